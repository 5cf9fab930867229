"""The compare view in Chromium: runs overlaid, alignment, smoothing, nudge details."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.job import ScriptedJob

ALPHA = "\N{GREEK SMALL LETTER ALPHA}"


def two_runs_with_a_nudge(api: httpx.Client) -> tuple[ScriptedJob, ScriptedJob, dict]:
    """A run logging every 2 s with an α nudge at step 30, and one logging every 5 s."""
    start = time.time() - 3600
    slow = ScriptedJob(api, name="sgd-lr0.1")
    steps = range(60)
    slow.log(
        "loss",
        steps,
        [2.0 * 0.97**s + 0.02 * (s % 3) for s in steps],
        times=[start + 2 * s for s in steps],
    )
    slow.log(
        "lr",
        steps,
        [0.1 if s < 30 else 0.05 for s in steps],
        times=[start + 2 * s for s in steps],
    )
    slow.log("momentum", steps, [0.9] * 60, times=[start + 2 * s for s in steps])
    api.post(
        f"{slow.path}/nudges",
        json={"param": "lr", "value": 0.05, "note": "loss plateau"},
    )
    [nudge] = slow.pending_nudges()
    applied = slow.apply(nudge, step=30, old_value=0.1)

    fast = ScriptedJob(api, name="adam-lr0.003")
    steps = range(40)
    fast.log(
        "loss",
        steps,
        [1.8 * 0.95**s for s in steps],
        times=[start + 600 + 5 * s for s in steps],
    )
    fast.log("lr", steps, [0.003] * 40, times=[start + 600 + 5 * s for s in steps])
    fast.log("val_acc", [19, 39], [0.7, 0.8])
    return slow, fast, applied


def test_compare_overlays_runs_and_switches_alignment(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    slow, fast, nudge = two_runs_with_a_nudge(api)
    page.goto(f"{server_url}/#/compare?runs={slow.run_id},{fast.run_id}")

    metric = page.locator("[data-chart='metric']")
    expect(metric).to_have_attribute("data-points", "100")
    expect(page).to_have_url(re.compile(r"metric=loss&align=step&y=linear&smooth=0$"))
    expect(page.locator("#compare-metric option")).to_have_text(
        ["loss", "lr", "momentum", "val_acc"]
    )
    expect(metric).to_have_attribute("data-x-last", "59")
    expect(page.locator("[data-chart='lr']")).to_have_attribute("data-points", "100")
    expect(page.locator("[data-chart='momentum']")).to_have_attribute(
        "data-points", "60"
    )
    legend = metric.locator(".u-legend .u-series")
    expect(legend.first).to_contain_text("step")
    expect(metric.locator(".u-legend")).to_contain_text(f"#{slow.run_id} sgd-lr0.1")

    page.click("#align-time")
    expect(page).to_have_url(re.compile(r"align=time"))
    expect(metric).to_have_attribute("data-x-kind", "time")
    expect(legend.first).to_contain_text("time")
    first_time = float(metric.get_attribute("data-x-first"))
    assert abs(first_time - (time.time() - 3600)) < 120

    page.click("#align-elapsed")
    expect(page).to_have_url(re.compile(r"align=elapsed"))
    expect(legend.first).to_contain_text("since start")
    expect(metric).to_have_attribute("data-x-first", "0")
    expect(metric).to_have_attribute("data-x-last", "195")  # 39 steps × 5 s

    page.click("#y-log")
    page.locator("#compare-smooth").fill("0.6")
    expect(page).to_have_url(re.compile(r"y=log&smooth=0\.6$"))
    expect(metric).to_have_attribute(
        "data-points", "100"
    )  # the raw twins are not counted
    expect(metric.locator("h3")).to_have_text("loss · smoothed 0.6")

    marker = metric.locator(f"[data-testid='nudge-marker'][data-run='{slow.run_id}']")
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("data-step", "30")
    marker.hover()
    tip = page.locator("#nudge-tip")
    expect(tip).to_be_visible()
    expect(tip.get_by_test_id("tip-change")).to_have_text(f"{ALPHA} 0.1 → 0.05")
    expect(tip).to_contain_text("loss plateau")
    expect(tip).to_contain_text(f"checkpoint#{nudge['checkpoint']}")
    marker.click()
    expect(tip).to_have_attribute("data-pinned", "true")
    page.mouse.move(5, 5)
    expect(tip).to_be_visible()  # pinned: stays after the pointer leaves
    screenshot("compare")

    page.locator(f"#compare-picker input[data-run-id='{fast.run_id}']").uncheck()
    expect(page).to_have_url(re.compile(rf"runs={slow.run_id}&"))
    expect(metric).to_have_attribute("data-points", "60")
    assert page_errors == []


def test_compare_url_restores_every_choice(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    slow, fast, _ = two_runs_with_a_nudge(api)
    page.goto(
        f"{server_url}/#/compare?runs={fast.run_id}&metric=lr&align=elapsed&y=log&smooth=0.3"
    )

    expect(page.locator("#compare-metric")).to_have_value("lr")
    expect(page.locator("#align-elapsed")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#y-log")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#compare-smooth")).to_have_value("0.3")
    metric = page.locator("[data-chart='metric']")
    expect(metric).to_have_attribute("data-points", "40")
    expect(metric).to_have_attribute("data-x-kind", "elapsed")

    # The page's own picker adds a run, which the URL then names.
    page.locator(f"#compare-picker input[data-run-id='{slow.run_id}']").check()
    expect(page).to_have_url(
        re.compile(rf"runs={fast.run_id},{slow.run_id}&metric=lr&")
    )
    expect(metric).to_have_attribute("data-points", "100")

    # A zoom on one chart zooms all three and reads the visible steps again.
    ranges: list[str] = []
    page.on("request", lambda r: "min_step=" in r.url and ranges.append(r.url))
    box = metric.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40, steps=4)
    page.mouse.up()
    lr_chart = page.locator("[data-chart='lr']")
    expect(lr_chart).to_have_attribute("data-zoomed", "true")
    expect(metric).to_have_attribute("data-detail", "zoomed")
    assert ranges
    assert all("max_step=" in url for url in ranges)
    metric.locator(".u-over").dblclick()
    expect(lr_chart).to_have_attribute("data-zoomed", "false")
    expect(metric).to_have_attribute("data-detail", "overview")
    assert page_errors == []
