"""Routes for nudges: request, list, cancel, acknowledge, undo."""

from __future__ import annotations

from fastapi import APIRouter

from panda.protocol import NudgeAck, NudgeCreate, NudgeOut, NudgeStatus
from panda.server.deps import (
    HubDep,
    NudgeId,
    RunId,
    SessionDep,
    WriteAuth,
    WriteSessionDep,
)
from panda.server.replies import branch_out, nudge_out, run_out
from panda.store import nudges, runs

router = APIRouter(
    prefix="/runs/{run_id}/nudges", tags=["nudges"], dependencies=[WriteAuth]
)


@router.post("", status_code=201)
def create_nudge(
    run_id: RunId, body: NudgeCreate, session: WriteSessionDep, hub: HubDep
) -> NudgeOut:
    """Ask the running job to change lr or momentum; answers the pending nudge."""
    run = runs.get_run(session, run_id)
    nudge = nudges.create_nudge(
        session,
        run,
        param=body.param,
        value=body.value,
        note=body.note,
        group=body.group,
    )
    reply = nudge_out(nudge)
    hub.publish(run_id, "nudge", reply)
    return reply


@router.get("")
def list_nudges(
    run_id: RunId, session: SessionDep, status: NudgeStatus | None = None
) -> list[NudgeOut]:
    """List the run's nudges, oldest first."""
    runs.get_run(session, run_id)
    return [nudge_out(n) for n in nudges.list_nudges(session, run_id, status=status)]


@router.get("/{nudge_id}")
def read_nudge(run_id: RunId, nudge_id: NudgeId, session: SessionDep) -> NudgeOut:
    """Return one nudge."""
    runs.get_run(session, run_id)
    return nudge_out(nudges.get_nudge(session, run_id, nudge_id))


@router.post("/{nudge_id}/cancel")
def cancel_nudge(
    run_id: RunId, nudge_id: NudgeId, session: WriteSessionDep, hub: HubDep
) -> NudgeOut:
    """Cancel a nudge that is still pending."""
    runs.get_run(session, run_id)
    reply = nudge_out(nudges.cancel_nudge(session, run_id, nudge_id))
    hub.publish(run_id, "nudge", reply)
    return reply


@router.post("/{nudge_id}/ack")
def ack_nudge(
    run_id: RunId,
    nudge_id: NudgeId,
    body: NudgeAck,
    session: WriteSessionDep,
    hub: HubDep,
) -> NudgeOut:
    """Record the hook's answer; an applied undo returns its new branch."""
    run = runs.get_run(session, run_id)
    result = nudges.ack_nudge(
        session,
        run,
        nudge_id,
        status=body.status,
        step=body.step,
        old_value=body.old_value,
        factor=body.factor,
        checkpoint_id=body.checkpoint,
        branch_id=body.branch,
        reason=body.reason,
    )
    reply = nudge_out(result.nudge)
    hub.publish(run_id, "nudge", reply)
    if result.branch is not None:
        hub.publish(run_id, "branch", branch_out(result.branch, run.current_branch_id))
    if result.branch is not None or result.revived:
        hub.publish(run_id, "run", run_out(run))
    return reply


@router.post("/{nudge_id}/undo", status_code=201)
def undo_nudge(
    run_id: RunId, nudge_id: NudgeId, session: WriteSessionDep, hub: HubDep
) -> NudgeOut:
    """Ask the job to go back to the checkpoint taken just before this nudge."""
    run = runs.get_run(session, run_id)
    reply = nudge_out(nudges.request_undo(session, run, nudge_id))
    hub.publish(run_id, "nudge", reply)
    return reply
