from __future__ import annotations

import io
import math

import pytest
from matplotlib.image import imread

from panda.plots import NudgeMark, Series, Timeline, plot_timelines, render, smooth


def make_timeline(label: str, scale: float) -> Timeline:
    steps = list(range(100))
    values = [scale / (1 + step) for step in steps]
    values[50] = math.nan
    values[60] = math.inf
    times = [1000.0 + 0.5 * step for step in steps]
    lr = Series(steps, [0.1 if step < 40 else 0.01 for step in steps], times)
    nudge = NudgeMark(step=40, time=1020.0, param="lr", old_value=0.1, new_value=0.01)
    return Timeline(label, Series(steps, values, times), lr, [nudge])


@pytest.mark.parametrize("align", ["step", "time", "relative"])
def test_plot_timelines_two_runs_draws_one_line_each(align: str) -> None:
    figure = plot_timelines(
        [make_timeline("run 1", 1.0), make_timeline("run 2", 2.0)],
        metric="loss",
        align=align,  # type: ignore[arg-type]
    )
    metric_ax = figure.axes[0]
    labelled = [
        line for line in metric_ax.get_lines() if not line.get_label().startswith("_")
    ]
    assert [line.get_label() for line in labelled] == ["run 1", "run 2"]
    assert metric_ax.get_ylabel() == "loss"


def test_render_png_has_requested_size() -> None:
    figure = plot_timelines(
        [make_timeline("a", 1.0)], metric="loss", figsize=(8, 5), dpi=50
    )
    image = imread(io.BytesIO(render(figure, "png")), format="png")
    assert image.shape[:2] == (250, 400)


def test_render_svg_is_svg() -> None:
    figure = plot_timelines([make_timeline("a", 1.0)], metric="loss", log_y=True)
    assert b"<svg" in render(figure, "svg")[:500]


def test_smooth_skips_non_finite_values() -> None:
    smoothed = smooth([1.0, math.nan, 3.0], 0.5)
    assert smoothed[0] == pytest.approx(1.0)
    assert math.isnan(smoothed[1])
    assert smoothed[2] == pytest.approx((0.5 * 0.5 * 1.0 + 0.5 * 3.0) / (1 - 0.25))


def test_plot_timelines_unknown_align_raises() -> None:
    with pytest.raises(ValueError, match="align must be one of"):
        plot_timelines([], metric="loss", align="epoch")  # type: ignore[arg-type]


def test_close_nudge_labels_stack_and_far_ones_share_the_top_row() -> None:
    timeline = make_timeline("run 1", 1.0)
    marks = [
        NudgeMark(step=step, time=1000.0 + step / 2, param="lr", old_value=0.1,
                  new_value=0.01)
        for step in (90, 40, 41, 40)
    ]  # fmt: skip
    timeline = Timeline(timeline.label, timeline.metric, timeline.lr, marks)

    figure = plot_timelines([timeline], metric="loss", align="step")

    placed = sorted(figure.axes[0].texts, key=lambda text: text.xy[0])
    assert [(text.xy[0], text.xyann[1]) for text in placed] == [
        (40.0, -12),
        (40.0, -22),
        (41.0, -32),
        (90.0, -12),
    ]
