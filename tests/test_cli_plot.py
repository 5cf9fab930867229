"""`panda plot` and `panda export` against a live server."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from matplotlib.image import imread

import panda.plots
from panda.cli import cli


def _logged_run(server: str, name: str, scale: float) -> int:
    run = httpx.post(f"{server}/api/runs", json={"name": name}).json()
    points = [
        {"key": "loss", "step": step, "value": scale / (1 + step)} for step in range(50)
    ]
    points.append({"key": "loss", "step": 50, "value": "Infinity"})
    response = httpx.post(
        f"{server}/api/runs/{run['id']}/metrics", json={"points": points}
    )
    response.raise_for_status()
    return int(run["id"])


def test_panda_plot_two_runs_writes_png_with_one_line_each(
    live_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _logged_run(live_server, "first", 1.0)
    second = _logged_run(live_server, "second", 2.0)
    figures: list[Figure] = []
    draw = panda.plots.plot_timelines

    def recording(*args: Any, **kwargs: Any) -> Figure:
        figures.append(draw(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(panda.plots, "plot_timelines", recording)
    output = tmp_path / "out.png"

    result = CliRunner().invoke(
        cli,
        ["plot", str(first), str(second), "--metric", "loss", "--align", "step",
         "--size", "800x500", "-o", str(output), "--server", live_server],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert imread(output, format="png").shape[:2] == (500, 800)
    lines = [line.get_label() for line in figures[0].axes[0].get_lines()]
    assert [label for label in lines if not str(label).startswith("_")] == [
        f"{first} first",
        f"{second} second",
    ]


def test_panda_plot_unknown_metric_fails_with_message(live_server: str) -> None:
    run_id = _logged_run(live_server, "first", 1.0)

    result = CliRunner().invoke(
        cli, ["plot", str(run_id), "--metric", "acc", "--server", live_server]
    )

    assert result.exit_code == 1
    assert "no metric 'acc'" in result.output


def test_panda_export_csv_round_trips_values(live_server: str, tmp_path: Path) -> None:
    run_id = _logged_run(live_server, "first", 1.0)
    output = tmp_path / "points.csv"

    result = CliRunner().invoke(
        cli,
        ["export", str(run_id), "--format", "csv", "-o", str(output),
         "--server", live_server],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert len(rows) == 51
    assert float(rows[3]["value"]) == 1.0 / 4
    assert math.isinf(float(rows[50]["value"]))
