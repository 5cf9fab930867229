"""Routes for metric points: ingest a batch, list keys, read a line."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Annotated, Any, cast

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic_core import to_json

from panda.protocol import (
    METRIC_KEY_MAX_CHARS,
    STEP_MAX,
    PointBatch,
    PointBatchAccepted,
    Series,
    encode_value,
)
from panda.server.body import FastJSONRoute
from panda.server.deps import HubDep, RunId, SessionDep, WriteAuth, WriteSessionDep
from panda.server.live import LiveHub
from panda.server.replies import run_out
from panda.store import metrics, runs, timelines
from panda.store.metrics import Ingest, NewPoint, SeriesData

router = APIRouter(
    prefix="/runs/{run_id}/metrics",
    tags=["metrics"],
    dependencies=[WriteAuth],
    route_class=FastJSONRoute,
)

MetricKeyQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=METRIC_KEY_MAX_CHARS, description="metric key"),
]
DEFAULT_MAX_POINTS = 2000
MAX_POINTS_CAP = 20_000

MaxPointsQuery = Annotated[
    int | None,
    Query(
        ge=2,
        le=MAX_POINTS_CAP,
        description=f"answer a view of at most this many points: each of "
        f"max_points/2 buckets keeps its lowest and highest point "
        f"[default: {DEFAULT_MAX_POINTS}]",
    ),
]
EveryPointQuery = Annotated[
    bool,
    Query(alias="all", description="every point in the range, never a view (export)"),
]
MinStepQuery = Annotated[
    int | None, Query(ge=0, le=STEP_MAX, description="first step of the range")
]
MaxStepQuery = Annotated[
    int | None, Query(ge=0, le=STEP_MAX, description="last step of the range")
]
BranchQuery = Annotated[
    int | None,
    Query(ge=1, le=STEP_MAX, description="that branch's own points only"),
]


@router.post("")
def append_points(
    run_id: RunId, body: PointBatch, session: WriteSessionDep, hub: HubDep
) -> PointBatchAccepted:
    """Store a batch of points; a point already stored keeps its first value."""
    run = runs.get_run(session, run_id)
    if body.points:
        # The list form (not what panda's client sends): one point at a time.
        points = [NewPoint(p.key, p.step, float(p.value), p.time) for p in body.points]
        for key, column in _store_columns(body).items():
            times: Sequence[float | None] = column.times or [None] * len(column.steps)
            points.extend(
                map(NewPoint, repeat(key), column.steps, column.values, times)
            )
        ingest = metrics.append_points(session, run, points, body.branch)
    else:
        ingest = metrics.append_columns(session, run, _store_columns(body), body.branch)
    _publish_points(hub, run_id, ingest)
    if (ingest.stored or ingest.revived) and hub.has_subscribers(run_id, "run"):
        hub.publish(run_id, "run", run_out(run))
    return PointBatchAccepted(received=ingest.received, stored=ingest.stored_count)


def _store_columns(body: PointBatch) -> dict[str, metrics.Columns]:
    columns = {}
    for key, column in body.columns.items():
        # Non-finite values arrive as strings; convert only when there are any.
        if str not in set(map(type, column.values)):
            values = cast("list[float]", column.values)
        else:
            values = [float(value) for value in column.values]
        columns[key] = metrics.Columns(column.steps, values, column.times)
    return columns


def _publish_points(hub: LiveHub, run_id: int, ingest: Ingest) -> None:
    if not ingest.stored or not hub.has_subscribers(run_id, "points"):
        return
    for key, column in ingest.stored.items():
        payload = {
            "run": run_id,
            "branch": ingest.branch_id,
            "key": key,
            "steps": column.steps,
            "values": [encode_value(value) for value in column.values],
            "times": column.times,
        }
        hub.publish(run_id, "points", to_json(payload).decode())


@router.get("", response_model=Series | list[str])
def read_metrics(
    run_id: RunId,
    session: SessionDep,
    key: MetricKeyQuery = None,
    max_points: MaxPointsQuery = None,
    every_point: EveryPointQuery = False,
    min_step: MinStepQuery = None,
    max_step: MaxStepQuery = None,
    branch: BranchQuery = None,
) -> Any:
    """Without key, list the run's metric keys; with key, read a view of its points.

    The points follow the run's current line, or only the given branch's own.
    Zoom in by narrowing min_step and max_step: the same number of points then
    shows more detail, down to every point.
    """
    run = runs.get_run(session, run_id)
    line = timelines.current_line(session, run)
    if key is None:
        return metrics.list_keys(session, line, run)
    if branch is not None:
        branch_id = metrics.resolve_branch(session, run, branch)
        line = [timelines.Segment(branch_id, 0, None)]
    view = _view_points(max_points, every_point, min_step, max_step)
    data = metrics.read_series(
        session, line, key, max_points=view, min_step=min_step, max_step=max_step
    )
    # Serialised here rather than through the Series model, which would
    # validate every point again; non-finite values are strings by now.
    payload = {
        "run": run_id,
        "key": key,
        "steps": data.steps,
        "values": [encode_value(value) for value in data.values],
        "times": data.times,
        "downsampled": data.downsampled,
        "total": data.total,
        "branch": None,
    }
    return Response(to_json(payload), media_type="application/json")


@router.get("/tails")
def read_abandoned_tails(
    run_id: RunId,
    session: SessionDep,
    key: Annotated[str, Query(min_length=1, max_length=METRIC_KEY_MAX_CHARS)],
    max_points: MaxPointsQuery = None,
    every_point: EveryPointQuery = False,
    min_step: MinStepQuery = None,
    max_step: MaxStepQuery = None,
) -> list[Series]:
    """Read a metric's abandoned tails: points off the current line, per branch."""
    run = runs.get_run(session, run_id)
    view = _view_points(max_points, every_point, min_step, max_step)
    tails = []
    for segment in timelines.abandoned_tails(session, run):
        data = metrics.read_series(
            session,
            [segment],
            key,
            max_points=view,
            min_step=min_step,
            max_step=max_step,
        )
        if data.total:
            tails.append(_series(run_id, key, data, branch=segment.branch_id))
    return tails


def _view_points(
    max_points: int | None,
    every_point: bool,
    min_step: int | None,
    max_step: int | None,
) -> int | None:
    """Return the view size to read, None for every point; refuse a bad range."""
    if min_step is not None and max_step is not None and min_step > max_step:
        raise HTTPException(
            422,
            f"query.min_step: must not exceed max_step, got {min_step} > {max_step}",
        )
    if every_point and max_points is not None:
        raise HTTPException(
            422, "query.all: pass either all=true or max_points, not both"
        )
    if every_point:
        return None
    return DEFAULT_MAX_POINTS if max_points is None else max_points


def _series(
    run_id: int, key: str, data: SeriesData, branch: int | None = None
) -> Series:
    return Series(
        run=run_id,
        key=key,
        steps=data.steps,
        values=data.values,
        times=data.times,
        downsampled=data.downsampled,
        total=data.total,
        branch=branch,
    )
