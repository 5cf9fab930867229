"""A metric with 200k points: the run page reads bounded views and zooms into detail."""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.job import ScriptedJob

POINTS = 200_000
BATCH = 100_000  # the most one PointBatch takes


@pytest.fixture
def big_run(api: httpx.Client) -> ScriptedJob:
    """A running job whose loss has 200k points, posted in two batches."""
    job = ScriptedJob(api, name="long-run")
    for first in range(0, POINTS, BATCH):
        steps = range(first, first + BATCH)
        values = [
            round(2 / (1 + s / 20_000) + 0.05 * math.sin(s / 50), 5) for s in steps
        ]
        job.log("loss", steps, values)
    return job


def drag(page: Any, chart: Any, start: float, stop: float) -> None:
    """Drag-select the fraction [start, stop] of a chart's plotting area."""
    box = chart.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (start + stop) / 2, y, steps=3)
    page.mouse.move(box["x"] + box["width"] * stop, y, steps=3)
    page.mouse.up()


def test_big_metric_loads_a_view_and_zoom_reads_detail(
    page: Any,
    server_url: str,
    big_run: ScriptedJob,
    page_errors: list[str],
) -> None:
    reads: list[dict[str, list[str]]] = []
    page.on(
        "request",
        lambda r: (
            "metrics?key=loss" in r.url
            and reads.append(parse_qs(urlparse(r.url).query))
        ),
    )
    started = time.monotonic()
    page.goto(f"{server_url}/#/runs/{big_run.run_id}")
    chart = page.locator("[data-chart='loss']")
    expect(chart).to_have_attribute("data-total", str(POINTS))
    assert time.monotonic() - started < 8

    overview = int(chart.get_attribute("data-points"))
    [first_read] = reads
    assert 400 <= int(first_read["max_points"][0]) <= 8_000
    assert 0 < overview <= int(first_read["max_points"][0])
    expect(chart).to_have_attribute("data-downsampled", "true")
    expect(chart.get_by_test_id("chart-count")).to_contain_text(f"of {POINTS:,} points")

    drag(page, chart, 0.40, 0.45)
    expect(chart).to_have_attribute("data-detail", "zoomed")
    low, high = map(int, chart.get_attribute("data-detail-range").split(","))
    assert "min_step" in reads[-1]
    assert "max_step" in reads[-1]
    assert 70_000 < low < high < 110_000
    share = (high - low) / POINTS
    detail = int(chart.get_attribute("data-points"))
    assert detail > 10 * overview * share  # far more points for the visible steps

    drag(page, chart, 0.50, 0.52)  # a few hundred steps: every point
    expect(chart).not_to_have_attribute("data-detail-range", f"{low},{high}")
    low, high = map(int, chart.get_attribute("data-detail-range").split(","))
    expect(chart).to_have_attribute("data-points", str(high - low + 1))

    chart.locator(".u-over").dblclick()
    expect(chart).to_have_attribute("data-detail", "overview")
    expect(chart).to_have_attribute("data-points", str(overview))

    big_run.log("loss", [POINTS, POINTS + 1], [0.2, 0.19])  # live appends still arrive
    expect(chart).to_have_attribute("data-total", str(POINTS + 2))
    expect(chart).to_have_attribute("data-points", str(overview + 2))
    assert page_errors == []
