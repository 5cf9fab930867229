"""Timelines rendered with matplotlib, for reports and the command line."""

from panda.plots.timelines import (
    ALIGNS,
    Align,
    NudgeMark,
    Series,
    Timeline,
    plot_timelines,
    render,
    smooth,
)

__all__ = [
    "ALIGNS",
    "Align",
    "NudgeMark",
    "Series",
    "Timeline",
    "plot_timelines",
    "render",
    "smooth",
]
