"""Everything a run logged along its current line, read whole for export."""

from __future__ import annotations

from sqlalchemy.orm import Session

from panda.store import metrics, timelines
from panda.store.metrics import SeriesData
from panda.store.models import Run


def read_current_line(session: Session, run: Run) -> dict[str, SeriesData]:
    """Return every point of each metric on the run's current line, by key.

    Keys logged only on abandoned branches are left out.
    """
    line = timelines.current_line(session, run)
    found = {}
    for key in metrics.list_keys(session, line, run):
        data = metrics.read_series(session, line, key)
        if data.total:
            found[key] = data
    return found
