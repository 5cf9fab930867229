"""The dashboard in real Chromium against a real panda server.

Each test plays the training job through the REST API (``ScriptedJob``) and
checks what a person watching the browser would see.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.job import ScriptedJob

ALPHA = "\N{GREEK SMALL LETTER ALPHA}"


def open_run(page: Any, server_url: str, run_id: int) -> None:
    page.goto(f"{server_url}/#/runs/{run_id}")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")


def nudge_row(page: Any, nudge_id: int) -> Any:
    return page.locator(f"#nudge-history tr[data-nudge-id='{nudge_id}']")


def test_static_dashboard_loads_without_errors(
    page: Any, server_url: str, page_errors: list[str]
) -> None:
    page.goto(server_url)

    expect(page.locator("#runs-empty")).to_be_visible()
    assert page.evaluate("typeof uPlot") == "function"
    page.click("#nav-compare")
    expect(page.locator("[data-chart='metric']")).to_contain_text("Pick runs")
    page.click("#nav-nudges")
    expect(page.locator("#review-empty")).to_contain_text("No applied nudges yet")
    expect(page.locator("#nav-nudges")).to_have_class("active")
    assert page_errors == []


def test_api_page_renders_from_vendored_files_only(
    page: Any, server_url: str, page_errors: list[str]
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server_url}/docs")

    # Swagger UI 5 renders OpenAPI 3.1, the version FastAPI writes.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("OAS 3.1")
    expect(
        page.locator(
            ".opblock-summary-path[data-path='/api/runs/{run_id}/nudges']"
        ).first
    ).to_be_visible()
    assert page_errors == []
    assert requested
    assert all(url.startswith(server_url) for url in requested), requested


def test_runs_list_updates_live(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    page.goto(server_url)
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")

    job = ScriptedJob(api, name="cnn-digits", lr=0.1)
    row = page.locator(f"#runs-table tr[data-run-id='{job.run_id}']")
    expect(row).to_have_attribute("data-status", "running")
    expect(row.locator(".badge")).to_have_text("running")

    job.log("loss", range(5), [2.0, 1.5, 1.2, 1.0, 0.875])
    expect(row.get_by_test_id("run-last-step")).to_have_text("4")
    expect(row.get_by_test_id("run-last-loss")).to_have_text("0.875")

    other = ScriptedJob(api, name="crashy")
    other.finish("failed")
    failed = page.locator(f"#runs-table tr[data-run-id='{other.run_id}']")
    expect(failed).to_have_attribute("data-status", "failed")
    expect(page.locator("#runs-table tbody tr").first).to_have_attribute(
        "data-run-id", str(other.run_id)
    )
    screenshot("runs")

    row.click()
    expect(page).to_have_url(re.compile(rf"#/runs/{job.run_id}$"))
    expect(page.locator("#run-title")).to_contain_text("cnn-digits")
    assert page_errors == []


def test_run_page_charts_grow_with_posted_points(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    job = ScriptedJob(api)
    job.log("loss", range(10), [2.0 - 0.1 * step for step in range(10)])
    job.log("lr", range(10), [0.1] * 10)
    open_run(page, server_url, job.run_id)

    loss_chart = page.locator("[data-chart='loss']")
    expect(loss_chart).to_have_attribute("data-points", "10")
    expect(page.locator("[data-chart='lr']")).to_have_attribute("data-points", "10")

    job.log("loss", range(10, 20), [1.0 - 0.01 * step for step in range(10)])
    job.log("val_loss", [9, 19], [1.1, 0.95])
    job.log("val_acc", [9, 19], [0.6, 0.7])
    job.log("momentum", range(20), [0.9] * 20)
    expect(loss_chart).to_have_attribute("data-points", "22")
    expect(loss_chart.locator(".u-legend")).to_contain_text("val_loss")
    expect(page.locator("[data-chart='acc']")).to_have_attribute("data-points", "2")
    expect(page.locator("[data-chart='momentum']")).to_have_attribute(
        "data-points", "20"
    )
    expect(page.get_by_test_id("stat-step")).to_have_text("19")
    titles = page.locator("#charts > .chart h3").all_inner_texts()
    assert titles[:2] == ["Loss", "Accuracy"]
    assert page_errors == []


def test_non_finite_points_draw_as_gaps(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    job = ScriptedJob(api)
    job.log("loss", range(6), [1.0, "NaN", 0.8, "Infinity", "-Infinity", 0.5])
    open_run(page, server_url, job.run_id)

    loss_chart = page.locator("[data-chart='loss']")
    expect(loss_chart).to_have_attribute("data-points", "6")
    job.log("loss", [6, 7], ["NaN", 0.4])
    expect(loss_chart).to_have_attribute("data-points", "8")
    expect(page.get_by_test_id("stat-loss")).to_have_text("0.4")

    loss_chart.get_by_label("log").check()
    job.log("loss", [8, 9], [-1.0, 0.3])
    expect(loss_chart).to_have_attribute("data-points", "10")
    assert page_errors == []


def test_alpha_nudge_goes_pending_then_applied_with_marker(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    job = ScriptedJob(api, lr=0.1)
    job.log("loss", range(30), [2.0 / (1 + step) ** 0.3 for step in range(30)])
    job.log("lr", range(30), [0.1] * 30)
    open_run(page, server_url, job.run_id)
    expect(page.locator("#nudge-lr")).to_have_attribute("placeholder", "now 0.1")

    page.fill("#nudge-lr", "0.01")
    page.fill("#nudge-note", "plateau")
    page.click("#nudge-submit")
    pending = page.locator("#nudge-history tbody tr").first
    expect(pending).to_have_attribute("data-status", "pending")
    expect(pending).to_contain_text("plateau")
    expect(page.locator("#nudge-error")).to_be_empty()

    [nudge] = job.pending_nudges()
    assert (nudge["param"], nudge["value"]) == ("lr", 0.01)
    job.apply(nudge, step=30, old_value=0.1)
    job.log("lr", range(30, 40), [0.01] * 10)
    job.log("loss", range(30, 40), [0.7 - 0.01 * step for step in range(10)])

    row = nudge_row(page, nudge["id"])
    expect(row).to_have_attribute("data-status", "applied")
    expect(row).to_contain_text("0.1 → 0.01")
    expect(row).to_contain_text("30")
    marker = page.locator("[data-chart='loss'] [data-testid='nudge-marker']")
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("data-step", "30")
    expect(marker).to_have_attribute(
        "title", re.compile(f"{ALPHA} 0.1 → 0.01 at step 30")
    )
    expect(page.locator("#checkpoints tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("stat-lr")).to_have_text("0.01")
    screenshot("applied")
    assert page_errors == []


def test_bad_alpha_is_refused_before_sending(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    job = ScriptedJob(api)
    open_run(page, server_url, job.run_id)

    page.fill("#nudge-lr", "-1")
    page.click("#nudge-submit")
    expect(page.locator("#nudge-error")).to_have_text(f"{ALPHA} must be > 0, got -1")
    page.fill("#nudge-lr", "")
    page.fill("#nudge-momentum", "1")
    page.click("#nudge-submit")
    expect(page.locator("#nudge-error")).to_have_text(
        "momentum must be in [0, 1), got 1"
    )

    assert api.get(f"{job.path}/nudges").json() == []
    assert page_errors == []


def test_server_refusal_shows_its_detail(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    job = ScriptedJob(api)
    open_run(page, server_url, job.run_id)
    job.finish()
    expect(page.locator("#run-status")).to_have_attribute("data-status", "finished")

    page.fill("#nudge-lr", "0.01")
    page.click("#nudge-submit")
    refused = api.post(f"{job.path}/nudges", json={"param": "lr", "value": 0.01})
    assert 400 <= refused.status_code < 500
    expect(page.locator("#nudge-error")).to_have_text(refused.json()["detail"])
    assert page_errors == []


def test_cancel_and_rejection_show_in_history(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    job = ScriptedJob(api)
    open_run(page, server_url, job.run_id)

    page.fill("#nudge-lr", "0.5")
    page.fill("#nudge-momentum", "0.95")
    page.click("#nudge-submit")
    expect(
        page.locator("#nudge-history tbody tr[data-status='pending']")
    ).to_have_count(2)
    lr_nudge, momentum_nudge = job.pending_nudges()

    nudge_row(page, lr_nudge["id"]).get_by_test_id("nudge-cancel").click()
    expect(nudge_row(page, lr_nudge["id"])).to_have_attribute(
        "data-status", "cancelled"
    )
    job.reject(momentum_nudge, "OneCycleLR cycles momentum")
    rejected = nudge_row(page, momentum_nudge["id"])
    expect(rejected).to_have_attribute("data-status", "rejected")
    expect(rejected).to_contain_text("OneCycleLR cycles momentum")
    assert page_errors == []


def test_undo_creates_undo_nudge_and_fades_old_tail(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    job = ScriptedJob(api)
    job.log("loss", range(20), [1.0 - 0.02 * step for step in range(20)])
    job.log("lr", range(20), [0.1] * 20)
    open_run(page, server_url, job.run_id)
    page.fill("#nudge-lr", "1.0")
    page.click("#nudge-submit")
    # The click only sends the request: the row shows once the server took it.
    expect(
        page.locator("#nudge-history tbody tr[data-status='pending']")
    ).to_have_count(1)
    [nudge] = job.pending_nudges()
    applied = job.apply(nudge, step=20, old_value=0.1)
    job.log("lr", range(20, 30), [1.0] * 10)
    job.log("loss", range(20, 30), [0.6 + 0.2 * step for step in range(10)])

    undo_button = nudge_row(page, nudge["id"]).get_by_test_id("nudge-undo")
    undo_button.click()
    undo_row = page.locator("#nudge-history tr[data-action='undo']")
    expect(undo_row).to_have_attribute("data-status", "pending")
    expect(undo_row).to_contain_text(f"undo #{nudge['id']}")
    [undo] = job.pending_nudges()
    assert (undo["action"], undo["undoes"]) == ("undo", nudge["id"])

    job.apply(undo, step=20, checkpoint=applied["checkpoint"])
    job.log("lr", range(20, 25), [0.1] * 5)
    job.log("loss", range(20, 25), [0.6 - 0.01 * step for step in range(5)])
    expect(undo_row).to_have_attribute("data-status", "applied")
    loss_chart = page.locator("[data-chart='loss']")
    expect(loss_chart).to_have_attribute("data-tails", "1")
    expect(loss_chart).to_have_attribute("data-tail-points", "10")
    expect(loss_chart).to_have_attribute("data-points", "25")
    expect(page.locator("#branches tbody tr")).to_have_count(2)
    screenshot("undo")
    assert page_errors == []


def test_unknown_run_says_so(
    page: Any, server_url: str, page_errors: list[str]
) -> None:
    page.goto(f"{server_url}/#/runs/999")

    expect(page.locator("#load-error")).to_have_text("Run #999 does not exist.")
    page.click("#nav-runs")
    expect(page.locator("#runs-empty")).to_be_visible()
    assert page_errors == []


def test_compare_view_overlays_ticked_runs(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    slow = ScriptedJob(api, name="lr-0.01")
    slow.log("loss", range(50), [2.0 - 0.01 * step for step in range(50)])
    slow.log("lr", range(50), [0.01] * 50)
    fast = ScriptedJob(api, name="lr-0.1")
    fast.log("loss", range(40), [2.0 - 0.04 * step for step in range(40)])
    fast.log("val_loss", [19, 39], [1.3, 0.6])
    api.post(f"{fast.path}/nudges", json={"param": "lr", "value": 0.05})
    [nudge] = fast.pending_nudges()
    fast.apply(nudge, step=30, old_value=0.1)

    page.goto(server_url)
    expect(page.locator("#compare-button")).to_be_disabled()
    for job in (slow, fast):
        page.locator(f"#run-{job.run_id} .run-pick").check()
    page.click("#compare-button")
    expect(page).to_have_url(
        re.compile(rf"#/compare\?runs={slow.run_id},{fast.run_id}&metric=loss&")
    )

    loss_chart = page.locator("[data-chart='metric']")
    expect(loss_chart).to_have_attribute("data-points", "90")
    expect(
        page.locator("#compare-picker .picker-row[data-selected='true']")
    ).to_have_count(2)
    expect(loss_chart.get_by_test_id("nudge-marker")).to_have_count(1)
    slow.log("loss", range(50, 60), [1.5] * 10)  # a running run's new points arrive
    expect(loss_chart).to_have_attribute("data-points", "100")
    page.select_option("#compare-metric", "val_loss")
    expect(page).to_have_url(re.compile(r"metric=val_loss&"))
    expect(loss_chart).to_have_attribute("data-points", "2")
    screenshot("compare")
    assert page_errors == []


def test_run_page_fits_a_narrow_screen(
    page: Any,
    server_url: str,
    api: httpx.Client,
    page_errors: list[str],
    screenshot: Any,
) -> None:
    job = ScriptedJob(api)
    job.log("loss", range(50), [1.0 / (1 + step) for step in range(50)])
    job.log("lr", range(50), [0.1] * 50)
    page.set_viewport_size({"width": 400, "height": 800})
    open_run(page, server_url, job.run_id)
    expect(page.locator("[data-chart='loss']")).to_have_attribute("data-points", "50")

    page_width = page.evaluate("document.documentElement.scrollWidth")
    canvas_width = page.locator("[data-chart='loss'] canvas").bounding_box()["width"]
    assert page_width <= 400
    assert 250 <= canvas_width <= 400
    screenshot("narrow")
    assert page_errors == []


@pytest.mark.parametrize("server_token", ["s3cret-token"])
def test_write_token_is_asked_once_then_kept(
    page: Any, server_url: str, api: httpx.Client, page_errors: list[str]
) -> None:
    job = ScriptedJob(api)
    open_run(page, server_url, job.run_id)
    expect(page.locator("#nudge-token")).to_be_hidden()

    page.fill("#nudge-lr", "0.02")
    page.click("#nudge-submit")
    expect(page.locator("#nudge-error")).to_contain_text("needs its token")
    page.fill("#nudge-token", "s3cret-token")
    page.click("#nudge-submit")
    pending = page.locator("#nudge-history tbody tr[data-status='pending']")
    expect(pending).to_have_count(1)

    pending.get_by_test_id("nudge-cancel").click()
    expect(page.locator("#nudge-history tbody tr").first).to_have_attribute(
        "data-status", "cancelled"
    )
    assert page_errors == []
