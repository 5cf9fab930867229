"""Routes for runs: create, list, read, end, heartbeat; branches, resume, fork."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from panda.protocol import (
    BranchOut,
    ForkRequest,
    Heartbeat,
    HeartbeatReply,
    ResumePlan,
    ResumeRequest,
    RunCreate,
    RunOut,
    RunStatus,
    RunUpdate,
)
from panda.server.deps import (
    DatabaseDep,
    HubDep,
    RunId,
    SessionDep,
    WriteAuth,
    WriteSessionDep,
)
from panda.server.live import LiveHub
from panda.server.replies import branch_out, checkpoint_out, nudge_out, run_out
from panda.store import nudges, resume, runs, timelines
from panda.store.db import Database

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[WriteAuth])

HEARTBEAT_MAX_WAIT_S = 30.0
# The hub wakes a waiting heartbeat; this recheck only covers a lost wake-up.
HEARTBEAT_RECHECK_S = 5.0


def publish_run(hub: LiveHub, reply: RunOut) -> None:
    """Send a ``run`` event to the run's streams and to the run list."""
    hub.publish(reply.id, "run", reply)


@router.post("", status_code=201)
def create_run(body: RunCreate, session: WriteSessionDep, hub: HubDep) -> RunOut:
    """Create a running run and its root branch."""
    run = runs.create_run(
        session, name=body.name, config=body.config, command=body.command, cwd=body.cwd
    )
    reply = run_out(run)
    publish_run(hub, reply)
    return reply


@router.get("")
def list_runs(session: SessionDep, status: RunStatus | None = None) -> list[RunOut]:
    """List runs, newest first, with their last step and last values."""
    return [run_out(run) for run in runs.list_runs(session, status=status)]


@router.get("/{run_id}")
def read_run(run_id: RunId, session: SessionDep) -> RunOut:
    """Return one run."""
    return run_out(runs.get_run(session, run_id))


@router.patch("/{run_id}")
def update_run(
    run_id: RunId, body: RunUpdate, session: WriteSessionDep, hub: HubDep
) -> RunOut:
    """End a run as finished or failed."""
    reply = run_out(runs.end_run(session, run_id, body.status))
    publish_run(hub, reply)
    return reply


@router.post("/{run_id}/heartbeat")
async def heartbeat(
    run_id: RunId,
    database: DatabaseDep,
    hub: HubDep,
    body: Heartbeat | None = None,
    wait_s: Annotated[float, Query(ge=0, description="long-poll, capped at 30")] = 0,
) -> HeartbeatReply:
    """Mark the run alive; return pending nudges, waiting up to wait_s for a change."""
    wait_s = min(wait_s, HEARTBEAT_MAX_WAIT_S)
    held = frozenset(body.held) if body is not None else frozenset()
    # Subscribe first, so a nudge created during the first read still wakes us.
    # Only a nudge event ends the wait, so no other event reaches this queue.
    subscription = hub.subscribe(run_id, names=("nudge",))
    try:
        reply, revived = await run_in_threadpool(_beat, database, run_id)
        if revived is not None:
            publish_run(hub, revived)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while _nothing_new(held, reply) and reply.status == runs.RUNNING:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await subscription.wait_for("nudge", min(remaining, HEARTBEAT_RECHECK_S))
            reply = await run_in_threadpool(_pending, database, run_id)
        return reply
    finally:
        hub.unsubscribe(subscription)


def _nothing_new(held: frozenset[int], reply: HeartbeatReply) -> bool:
    """Tell if the pending nudges are exactly those the client holds.

    A nudge not held, or a held one no longer pending (applied, rejected or
    cancelled), is news the client must hear at once. A client that holds
    nothing (``held`` empty or absent) hears at once of any pending nudge.
    """
    return {nudge.id for nudge in reply.pending} == held


def _beat(database: Database, run_id: int) -> tuple[HeartbeatReply, RunOut | None]:
    with database.session(write=True) as session:
        run = runs.get_run(session, run_id)
        revived = runs.touch_run(run)
        session.commit()
        pending = [nudge_out(n) for n in nudges.pending_nudges(session, run_id)]
        reply = HeartbeatReply(status=run.status, pending=pending)  # type: ignore[arg-type]
        return reply, run_out(run) if revived else None


def _pending(database: Database, run_id: int) -> HeartbeatReply:
    with database.session() as session:
        run = runs.get_run(session, run_id)
        pending = [nudge_out(n) for n in nudges.pending_nudges(session, run_id)]
        return HeartbeatReply(status=run.status, pending=pending)  # type: ignore[arg-type]


@router.get("/{run_id}/branches")
def list_branches(run_id: RunId, session: SessionDep) -> list[BranchOut]:
    """List the run's branches, oldest first."""
    run = runs.get_run(session, run_id)
    return [
        branch_out(branch, run.current_branch_id)
        for branch in timelines.list_branches(session, run.id)
    ]


@router.post("/{run_id}/resume")
def resume_run(
    run_id: RunId,
    session: WriteSessionDep,
    hub: HubDep,
    body: ResumeRequest | None = None,
) -> ResumePlan:
    """Start a branch at a checkpoint (the latest if none given); run again."""
    checkpoint_id = body.checkpoint if body is not None else None
    resumed = resume.resume_run(session, run_id, checkpoint_id)
    run_reply = run_out(resumed.run)
    hub.publish(run_id, "branch", branch_out(resumed.branch, resumed.branch.id))
    publish_run(hub, run_reply)
    return ResumePlan(
        run=run_reply,
        branch=resumed.branch.id,
        checkpoint=checkpoint_out(resumed.checkpoint),
        replay=[nudge_out(nudge) for nudge in resumed.replay],
    )


@router.post("/{run_id}/fork", status_code=201)
def fork_run(
    run_id: RunId, body: ForkRequest, session: WriteSessionDep, hub: HubDep
) -> RunOut:
    """Create a new run that goes on from a checkpoint of this one."""
    fork = resume.fork_run(
        session, run_id, body.checkpoint, name=body.name, config=body.config
    )
    reply = run_out(fork)
    publish_run(hub, reply)
    return reply
