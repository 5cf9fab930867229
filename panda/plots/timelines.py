"""Render runs' timelines with matplotlib: a metric on top, α as a step line below.

Functions take plain data (:class:`Timeline`), so the server and the command line
share them. They build ``matplotlib.figure.Figure`` objects directly and never
touch pyplot, which keeps them safe in a server's worker threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

Align = Literal["step", "time", "relative"]
ALIGNS: tuple[Align, ...] = ("step", "time", "relative")
_X_LABELS = {
    "step": "step",
    "time": "wall-clock time (s since the earliest point)",
    "relative": "time since the run's first point (s)",
}


@dataclass(frozen=True)
class NudgeMark:
    """Where a nudge took effect on a timeline."""

    step: int
    time: float | None
    param: str
    old_value: float | None
    new_value: float | None
    note: str | None = None


@dataclass(frozen=True)
class Series:
    """One metric's points along a run's current line."""

    steps: Sequence[int]
    values: Sequence[float]
    times: Sequence[float]


@dataclass(frozen=True)
class Timeline:
    """What one run contributes to a plot."""

    label: str
    metric: Series
    lr: Series | None = None
    nudges: Sequence[NudgeMark] = field(default_factory=tuple)


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Return the exponential moving average of ``values``, bias-corrected.

    Non-finite values pass through unsmoothed and do not poison the average.
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    smoothed, average, count = [], 0.0, 0
    for value in values:
        if not math.isfinite(value):
            smoothed.append(value)
            continue
        count += 1
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**count))
    return smoothed


def plot_timelines(
    timelines: Sequence[Timeline],
    *,
    metric: str,
    align: Align = "step",
    log_y: bool = False,
    smoothing: float = 0.0,
    figsize: tuple[float, float] = (10.0, 6.0),
    dpi: int = 100,
) -> Figure:
    """Draw each timeline's metric, its α below, and a marker at every nudge.

    Args:
        timelines: one entry per run (or branch line), drawn in order.
        metric: the metric's name, used for the y label and the title.
        align: x axis: ``step``, ``time`` (wall clock, from the earliest point of
            any timeline) or ``relative`` (seconds since each run's first point).
        log_y: use a logarithmic y axis for the metric.
        smoothing: exponential moving average weight in [0, 1); the raw curve is
            drawn faintly behind the smoothed one.

    Returns:
        The figure, for the caller to save.
    """
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    show_lr = any(timeline.lr is not None for timeline in timelines)
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    if show_lr:
        metric_ax, lr_ax = figure.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
    else:
        metric_ax, lr_ax = figure.subplots(1, 1), None
    origin = _earliest_time(timelines)
    labels: list[_Label] = []

    for index, timeline in enumerate(timelines):
        color = f"C{index % 10}"
        _draw_metric(metric_ax, timeline, align, origin, smoothing, color)
        if lr_ax is not None and timeline.lr is not None:
            lr_ax.step(
                _x(timeline.lr, align, origin, timeline.metric),
                timeline.lr.values,
                where="post",
                color=color,
                linewidth=1.2,
            )
        labels += _draw_nudges(metric_ax, lr_ax, timeline, align, origin, color)
    _place_labels(metric_ax, labels, figsize[0])

    metric_ax.set_ylabel(metric)
    metric_ax.set_title(f"{metric} by {align}")
    if log_y:
        metric_ax.set_yscale("log")
    if timelines:
        metric_ax.legend(loc="best", fontsize="small")
    metric_ax.grid(True, alpha=0.3)
    bottom = lr_ax if lr_ax is not None else metric_ax
    bottom.set_xlabel(_X_LABELS[align])
    if lr_ax is not None:
        lr_ax.set_ylabel("α (lr)")
        lr_ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        low, high = lr_ax.get_ylim()
        lr_ax.yaxis.set_major_formatter(plain)
        # Within about a decade there is at most one major tick: label the
        # minors at 2x and 5x, which keep apart where the log scale crowds.
        narrow = low > 0 and high / low < 30
        lr_ax.yaxis.set_minor_formatter(
            FuncFormatter(_two_or_five) if narrow else NullFormatter()
        )
        lr_ax.grid(True, alpha=0.3)
    return figure


def _two_or_five(value: float, _: int) -> str:
    """Label a log axis' minor tick when its value is 2 or 5 times a power of 10."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa, 6) in (2.0, 5.0) else ""


def _draw_metric(
    ax: Axes,
    timeline: Timeline,
    align: Align,
    origin: float,
    smoothing: float,
    color: str,
) -> None:
    xs = _x(timeline.metric, align, origin, timeline.metric)
    values = [_finite_or_nan(value) for value in timeline.metric.values]
    if smoothing > 0:
        ax.plot(xs, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(xs, smooth(values, smoothing), color=color, label=timeline.label)
    else:
        ax.plot(xs, values, color=color, linewidth=1.2, label=timeline.label)

    # Non-finite points would vanish as gaps; mark them at the top edge instead.
    bad = [
        x
        for x, raw in zip(xs, timeline.metric.values, strict=True)
        if not math.isfinite(raw)
    ]
    if bad:
        ax.plot(
            bad,
            [1.0] * len(bad),
            "x",
            color=color,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )


def _draw_nudges(
    metric_ax: Axes,
    lr_ax: Axes | None,
    timeline: Timeline,
    align: Align,
    origin: float,
    color: str,
) -> list[_Label]:
    """Draw a dashed line at each nudge; return the labels to place."""
    labels = []
    for mark in timeline.nudges:
        x = _nudge_x(mark, align, origin, timeline.metric)
        if x is None:
            continue
        for ax in (metric_ax, lr_ax):
            if ax is not None:
                ax.axvline(x, color=color, linestyle="--", linewidth=0.9, alpha=0.7)
        text = f"{mark.param} {_fmt(mark.old_value)}→{_fmt(mark.new_value)}"
        labels.append(_Label(x, text, color))
    return labels


@dataclass(frozen=True)
class _Label:
    x: float
    text: str
    color: str


# Estimates in points: the axes span most of the figure's width, and an x-small
# character is about four points wide.
_AXES_WIDTH_FRACTION = 0.85
_LABEL_CHAR_PT = 4.0


def _place_labels(ax: Axes, labels: Sequence[_Label], figure_width_in: float) -> None:
    """Write the nudge labels along the top of ``ax``, right of their lines.

    A label that would overprint one already placed goes a row lower, in the
    first row where it fits: nudges applied at one step stack, close ones too.
    """
    low, high = ax.get_xlim()
    width_pt = _AXES_WIDTH_FRACTION * figure_width_in * 72
    row_ends: list[float] = []
    for label in sorted(labels, key=lambda label: label.x):
        start = (label.x - low) / ((high - low) or 1.0) * width_pt
        end = start + 3 + _LABEL_CHAR_PT * len(label.text)
        row = next((i for i, last in enumerate(row_ends) if last < start), None)
        if row is None:
            row = len(row_ends)
            row_ends.append(end)
        else:
            row_ends[row] = end
        ax.annotate(
            label.text,
            xy=(label.x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12 - 10 * row),
            textcoords="offset points",
            fontsize="x-small",
            color=label.color,
        )


def _x(series: Series, align: Align, origin: float, reference: Series) -> list[float]:
    if align == "step":
        return [float(step) for step in series.steps]
    start = origin if align == "time" else _first_time(reference, series)
    return [time - start for time in series.times]


def _nudge_x(
    mark: NudgeMark, align: Align, origin: float, metric: Series
) -> float | None:
    if align == "step":
        return float(mark.step)
    if mark.time is None:
        return None
    start = origin if align == "time" else _first_time(metric, metric)
    return mark.time - start


def _first_time(reference: Series, fallback: Series) -> float:
    times = reference.times or fallback.times
    return min(times) if times else 0.0


def _earliest_time(timelines: Sequence[Timeline]) -> float:
    starts = [min(t.metric.times) for t in timelines if t.metric.times]
    return min(starts) if starts else 0.0


def _finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


def render(figure: Figure, image_format: Literal["png", "svg"]) -> bytes:
    """Return the figure encoded as PNG or SVG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format)
    return buffer.getvalue()
