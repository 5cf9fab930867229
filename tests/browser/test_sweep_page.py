"""The sweep page in real Chromium: ranked trials, scatter plots, rounds, stop."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

SPACE = {
    "lr": {"log_uniform": [1e-4, 1.0]},
    "momentum": {"one_minus_log_uniform": [0.5, 0.999]},
}


def _coarse_to_fine_sweep(api: httpx.Client) -> int:
    settings = {
        "strategy": "coarse_to_fine",
        "trials": 8,
        "objective": "val/loss",
        "options": {"trials_per_round": 4, "top_k": 2},
    }
    body = {"name": "digits-c2f", "config": {"sweep": settings, "space": SPACE}}
    sweep_id = int(api.post("/api/sweeps", json=body).json()["id"])
    trials = api.post(f"/api/sweeps/{sweep_id}/trials", json={"count": 4}).json()
    for trial in trials:
        run = api.post(
            "/api/runs", json={"name": f"trial {trial['number']}", "config": {}}
        ).json()
        # A loss that is lowest near α = 0.03.
        loss = 0.2 + abs(trial["params"]["lr"] - 0.03) * 3
        path = f"/api/sweeps/{sweep_id}/trials/{trial['number']}"
        body = {"run": run["id"], "status": "finished", "objective": loss}
        assert api.patch(path, json=body).status_code == 200
    api.post(f"/api/sweeps/{sweep_id}/trials", json={"count": 2})
    return sweep_id


def test_sweep_page_ranks_trials_and_plots_each_setting(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    sweep_id = _coarse_to_fine_sweep(api)

    page.goto(f"{server_url}/#/sweeps")
    page.click(f"#sweep-{sweep_id} a")

    rows = page.locator("#sweep-trials tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.nth(0)).to_have_attribute("data-rank", "1")
    expect(rows.nth(3)).to_have_attribute("data-rank", "4")
    expect(rows.nth(4)).to_have_attribute("data-status", "pending")
    objectives = [
        float(text)
        for text in page.locator("[data-testid=trial-objective]").all_inner_texts()[:4]
    ]
    assert objectives == sorted(objectives)
    expect(page.locator(".sweep-chart[data-param=lr] canvas")).to_have_count(1)
    expect(page.locator(".sweep-chart[data-param=momentum] canvas")).to_have_count(1)
    expect(page.locator(".sweep-chart[data-param=momentum]")).to_contain_text(
        "1 − momentum (log scale)"
    )
    expect(page.locator("#sweep-rounds-table tbody tr")).to_have_count(2)
    expect(page.locator("[data-testid=suggestion-params]")).to_contain_text("lr")
    expect(rows.nth(0).locator("a")).to_have_attribute(
        "href", re.compile(r"#/runs/\d+")
    )
    assert page.evaluate(
        "() => document.querySelector('.sweep-chart[data-param=lr] .u-wrap') !== null"
    )
    screenshot("sweep")

    rows.nth(4).locator("button").click()
    expect(rows.nth(5)).to_have_attribute("data-status", "stopped")
    assert page_errors == []
