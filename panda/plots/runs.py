"""Timelines of stored runs, read straight from the store, ready to plot.

The server renders its plot endpoints from these; long lines arrive as views
(each bucket's lowest and highest point), so a plot of a million points costs
about as much as one of a few thousand.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from panda.errors import PandaError
from panda.plots.timelines import NudgeMark, Series, Timeline
from panda.store import metrics, nudges, runs, timelines

LR_KEY = "lr"


class MetricNotFound(PandaError):
    """A run has no metric of the requested name."""


def read_timeline(
    session: Session, run_id: int, metric: str, *, max_points: int
) -> Timeline:
    """Return run ``run_id``'s current line of ``metric``, its α and its nudges.

    Args:
        max_points: the most points read per series (see
            :func:`panda.store.metrics.read_series`).

    Raises:
        RunNotFound: no run has that id.
        MetricNotFound: the run never logged ``metric``.
    """
    run = runs.get_run(session, run_id)
    line = timelines.current_line(session, run)
    keys = metrics.list_keys(session, line, run)
    if metric not in keys:
        logged = ", ".join(repr(key) for key in keys) or "none yet"
        raise MetricNotFound(
            f"run {run_id} has no metric {metric!r}; its metrics: {logged}"
        )

    def series(key: str) -> Series:
        data = metrics.read_series(session, line, key, max_points=max_points)
        return Series(data.steps, data.values, data.times)

    return Timeline(
        label=f"{run.id} {run.name}",
        metric=series(metric),
        lr=series(LR_KEY) if LR_KEY in keys else None,
        nudges=_nudge_marks(session, run_id),
    )


def _nudge_marks(session: Session, run_id: int) -> Sequence[NudgeMark]:
    return [
        NudgeMark(
            step=nudge.applied_step,
            time=nudge.applied_at.timestamp() if nudge.applied_at else None,
            param=nudge.param or nudge.action,
            old_value=nudge.old_value,
            new_value=nudge.value,
            note=nudge.note,
        )
        for nudge in nudges.list_nudges(session, run_id, status="applied")
        if nudge.applied_step is not None
    ]
