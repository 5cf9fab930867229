"""Server-sent event streams: one run's events, and every run's status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from panda.server.deps import DatabaseDep, HubDep, RunId
from panda.store import runs
from panda.store.db import Database

router = APIRouter(tags=["stream"])

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/runs/{run_id}/stream")
async def stream_run(
    run_id: RunId, request: Request, database: DatabaseDep, hub: HubDep
) -> StreamingResponse:
    """Stream the run's points, nudge, checkpoint, branch and run events."""
    await run_in_threadpool(_check_run, database, run_id)
    subscription = hub.subscribe(run_id)
    events = hub.stream(subscription, is_disconnected=request.is_disconnected)
    return StreamingResponse(events, media_type="text/event-stream", headers=_HEADERS)


@router.get("/stream")
async def stream_runs(request: Request, hub: HubDep) -> StreamingResponse:
    """Stream a ``run`` event whenever any run changes."""
    subscription = hub.subscribe(None)
    events = hub.stream(subscription, is_disconnected=request.is_disconnected)
    return StreamingResponse(events, media_type="text/event-stream", headers=_HEADERS)


def _check_run(database: Database, run_id: int) -> None:
    with database.session() as session:
        runs.get_run(session, run_id)
