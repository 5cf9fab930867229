"""The nudge review page in Chromium: each applied nudge's effect on the loss."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.sync_api import expect

from tests.browser.job import ScriptedJob

MINUS = "\N{MINUS SIGN}"


def nudge_and_apply(
    job: ScriptedJob, body: dict[str, Any], step: int, old: float
) -> int:
    job._ok(job.api.post(f"{job.path}/nudges", json=body))
    [nudge] = job.pending_nudges()
    job.apply(nudge, step=step, old_value=old)
    return int(nudge["id"])


def piecewise_loss(
    start: float, slopes: list[tuple[int, float]], last: int
) -> list[float]:
    """A loss falling (or rising) linearly, with a new slope from each given step on."""
    values, level, slope = [], start, slopes[0][1]
    changes = dict(slopes)
    for step in range(last):
        slope = changes.get(step, slope)
        values.append(round(level, 6))
        level += slope
    return values


def test_nudge_review_shows_slopes_and_verdicts(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    # Run A: α up at 100 makes the loss fall 4× faster (helped);
    # α down at 200 changes nothing (neutral).
    good = ScriptedJob(api, name="resnet-sgd")
    good.log("loss", range(300), piecewise_loss(2.0, [(0, -0.001), (100, -0.004)], 300))
    helped = nudge_and_apply(
        good, {"param": "lr", "value": 0.2, "note": "too slow"}, 100, 0.1
    )
    neutral = nudge_and_apply(good, {"param": "lr", "value": 0.15}, 200, 0.2)
    good.finish()
    # Run B: momentum up at 100 turns a falling loss into a rising one (hurt).
    bad = ScriptedJob(api, name="vit-adam")
    bad.log(
        "train/loss", range(200), piecewise_loss(2.0, [(0, -0.004), (100, 0.002)], 200)
    )
    hurt = nudge_and_apply(bad, {"param": "momentum", "value": 0.99}, 100, 0.9)
    bad.finish()

    metric_requests: list[str] = []
    page.on("request", lambda r: "/metrics?" in r.url and metric_requests.append(r.url))
    page.goto(f"{server_url}/#/nudges")
    rows = page.locator("#nudge-review tbody tr")
    expect(rows).to_have_count(3)

    def row(run: ScriptedJob, nudge: int) -> Any:
        return page.locator(
            f"#nudge-review tr[data-run-id='{run.run_id}'][data-nudge-id='{nudge}']"
        )

    expect(row(good, helped)).to_have_attribute("data-verdict", "helped")
    expect(row(good, helped).get_by_test_id("slope-before")).to_have_text(
        f"{MINUS}0.001/step"
    )
    expect(row(good, helped).get_by_test_id("slope-after")).to_have_text(
        f"{MINUS}0.004/step"
    )
    expect(row(good, neutral)).to_have_attribute("data-verdict", "neutral")
    expect(row(good, neutral).get_by_test_id("slope-before")).to_have_text(
        f"{MINUS}0.004/step"
    )
    expect(row(bad, hurt)).to_have_attribute("data-verdict", "hurt")
    expect(row(bad, hurt).get_by_test_id("slope-after")).to_have_text("+0.002/step")
    expect(row(bad, hurt)).to_contain_text("train/loss")
    expect(row(bad, hurt).get_by_test_id("sparkline")).to_be_visible()
    expect(page.locator("#review-rules")).to_contain_text("at least 2 %")
    expect(page.locator("#review-summary")).to_contain_text("1 helped")
    screenshot("review")

    # Each window is read as a step range, never the whole line.
    windows = [
        parse_qs(urlparse(url).query) for url in metric_requests if "key=" in url
    ]
    assert len(windows) == 3
    assert all("min_step" in query and "max_step" in query for query in windows)
    assert sorted(query["min_step"][0] for query in windows) == ["0", "0", "100"]

    page.select_option("#review-sort", "effect")
    expect(rows.first).to_have_attribute("data-verdict", "helped")
    expect(rows.last).to_have_attribute("data-verdict", "hurt")
    page.select_option("#review-run", str(bad.run_id))
    expect(page).to_have_url(re.compile(rf"#/nudges\?run={bad.run_id}&window=50"))
    expect(rows).to_have_count(1)
    page.fill("#review-window", "20")
    page.locator("#review-window").press("Enter")
    expect(page.locator("#review-rules")).to_contain_text("over the 20 steps before")
    expect(row(bad, hurt)).to_have_attribute("data-verdict", "hurt")
    assert page_errors == []
