"""Routes that export a run: its metrics along the current line and its nudges.

CSV is one long table, one row per point (``key, step, value, time, branch``),
or one row per nudge with ``what=nudges``. JSON holds the run, its metrics as
columns per key, and its nudges. Non-finite values are written as in
:mod:`panda.protocol`: ``NaN``, ``Infinity``, ``-Infinity``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from panda.protocol import NudgeOut, encode_value
from panda.server.deps import RunId, SessionDep
from panda.server.replies import nudge_out, run_out
from panda.store import export, nudges, runs
from panda.store.metrics import SeriesData

router = APIRouter(prefix="/runs/{run_id}", tags=["export"])

Part = Literal["metrics", "nudges"]
METRIC_COLUMNS = ("key", "step", "value", "time", "branch")


@router.get("/export.csv", response_class=Response)
def export_csv(
    run_id: RunId,
    session: SessionDep,
    what: Annotated[Part, Query(description="which table")] = "metrics",
) -> Response:
    """Export the run's metric points, or its nudges, as one CSV table."""
    run = runs.get_run(session, run_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if what == "metrics":
        writer.writerow(METRIC_COLUMNS)
        for key, data in export.read_current_line(session, run).items():
            writer.writerows(_metric_rows(key, data))
    else:
        history = [nudge_out(nudge).model_dump(mode="json") for nudge in
                   nudges.list_nudges(session, run_id)]  # fmt: skip
        columns = list(NudgeOut.model_fields)
        writer.writerow(columns)
        writer.writerows([_cell(item[name]) for name in columns] for item in history)
    return _download(buffer.getvalue(), "text/csv", f"run-{run_id}-{what}.csv")


@router.get("/export.json", response_class=Response)
def export_json(
    run_id: RunId,
    session: SessionDep,
    what: Annotated[
        Part | None, Query(description="only this part; both when absent")
    ] = None,
) -> Response:
    """Export the run with its metric points and its nudge history as JSON."""
    run = runs.get_run(session, run_id)
    document: dict[str, Any] = {"run": run_out(run).model_dump(mode="json")}
    if what in (None, "metrics"):
        lines = export.read_current_line(session, run)
        document["metrics"] = {key: _columns(data) for key, data in lines.items()}
    if what in (None, "nudges"):
        document["nudges"] = [
            nudge_out(nudge).model_dump(mode="json")
            for nudge in nudges.list_nudges(session, run_id)
        ]
    body = json.dumps(document, separators=(",", ":"), allow_nan=False)
    name = f"run-{run_id}.json" if what is None else f"run-{run_id}-{what}.json"
    return _download(body, "application/json", name)


def _metric_rows(key: str, data: SeriesData) -> list[tuple[Any, ...]]:
    return [
        (key, step, encode_value(value), time, branch)
        for step, value, time, branch in zip(
            data.steps, data.values, data.times, data.branches, strict=True
        )
    ]


def _columns(data: SeriesData) -> dict[str, list[Any]]:
    return {
        "steps": data.steps,
        "values": [encode_value(value) for value in data.values],
        "times": data.times,
        "branches": data.branches,
    }


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return encode_value(value)
    return "" if value is None else value


def _download(body: str, media_type: str, filename: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media_type, headers=headers)
