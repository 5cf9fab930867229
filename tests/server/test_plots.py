"""Plot endpoints: images of one or several runs, and clear errors."""

from __future__ import annotations

import io

import pytest
from matplotlib.image import imread

from tests.server.conftest import Api


def _run_with_points(api: Api, name: str) -> int:
    run = api.run(name=name)
    points = [
        {"key": key, "step": step, "value": value, "time": 1000.0 + step}
        for step in range(200)
        for key, value in (("loss", 1.0 / (1 + step)), ("lr", 0.1))
    ]
    points[100]["value"] = "NaN"
    api.ok("POST", f"/runs/{run['id']}/metrics", json={"points": points})
    return int(run["id"])


def test_plot_run_png_with_applied_nudge_answers_image(api: Api) -> None:
    run_id = _run_with_points(api, "a")
    checkpoint = api.checkpoint(run_id, 50)
    api.apply(run_id, api.nudge(run_id)["id"], 50, checkpoint["id"])

    response = api.client.get(
        f"/api/runs/{run_id}/plot.png", params={"metric": "loss", "width": 400}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert imread(io.BytesIO(response.content), format="png").shape[:2] == (600, 400)


def test_plot_run_svg_answers_svg(api: Api) -> None:
    run_id = _run_with_points(api, "a")

    response = api.client.get(f"/api/runs/{run_id}/plot.svg", params={"metric": "loss"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in response.content[:1000]


def test_plot_several_runs_aligned_relative_answers_png(api: Api) -> None:
    first, second = _run_with_points(api, "a"), _run_with_points(api, "b")
    params = {
        "runs": f"{first},{second}",
        "metric": "loss",
        "align": "relative",
        "log_y": "1",
        "smooth": "0.6",
    }

    response = api.client.get("/api/plot.png", params=params)

    assert response.status_code == 200, response.text
    assert imread(io.BytesIO(response.content), format="png").shape[:2] == (600, 1000)


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/api/runs/99/plot.png", {"metric": "loss"}, 404, "run 99 not found"),
        ("/api/runs/{run}/plot.png", {"metric": "acc"}, 404, "no metric 'acc'"),
        ("/api/runs/{run}/plot.png", {"align": "epoch"}, 422, "query.align"),
        ("/api/runs/{run}/plot.gif", {}, 422, "path.image_format"),
        ("/api/plot.png", {"runs": "1,x"}, 422, "query.runs"),
        ("/api/plot.png", {"runs": "{run}", "smooth": "1"}, 422, "query.smooth"),
    ],
)
def test_plot_bad_request_returns_clear_4xx(
    api: Api, path: str, params: dict[str, str], status: int, words: str
) -> None:
    run_id = _run_with_points(api, "a")
    params = {name: value.format(run=run_id) for name, value in params.items()}

    response = api.client.get(path.format(run=run_id), params=params)

    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_plot_route_align_matches_plots_align() -> None:
    from typing import get_args

    from panda import plots
    from panda.server.routes import plots as plot_routes

    assert get_args(plot_routes.Align) == get_args(plots.Align)
