"""Routes for the checkpoint index; the server never touches checkpoint files."""

from __future__ import annotations

from fastapi import APIRouter

from panda.protocol import CheckpointCreate, CheckpointOut
from panda.server.deps import (
    CheckpointId,
    HubDep,
    RunId,
    SessionDep,
    WriteAuth,
    WriteSessionDep,
)
from panda.server.replies import checkpoint_out
from panda.store import checkpoints, runs

router = APIRouter(
    prefix="/runs/{run_id}/checkpoints", tags=["checkpoints"], dependencies=[WriteAuth]
)


@router.post("", status_code=201)
def create_checkpoint(
    run_id: RunId, body: CheckpointCreate, session: WriteSessionDep, hub: HubDep
) -> CheckpointOut:
    """Index a checkpoint file the training process has written."""
    run = runs.get_run(session, run_id)
    checkpoint = checkpoints.create_checkpoint(
        session,
        run,
        step=body.step,
        path=body.path,
        size_bytes=body.size_bytes,
        sha256=body.sha256,
        reason=body.reason,
        branch_id=body.branch,
    )
    reply = checkpoint_out(checkpoint)
    hub.publish(run_id, "checkpoint", reply)
    return reply


@router.get("")
def list_checkpoints(run_id: RunId, session: SessionDep) -> list[CheckpointOut]:
    """List the run's checkpoints, oldest first, deleted ones marked."""
    runs.get_run(session, run_id)
    return [checkpoint_out(c) for c in checkpoints.list_checkpoints(session, run_id)]


@router.delete("/{checkpoint_id}")
def delete_checkpoint(
    run_id: RunId, checkpoint_id: CheckpointId, session: WriteSessionDep, hub: HubDep
) -> CheckpointOut:
    """Mark a checkpoint deleted, unless a nudge or a branch needs it."""
    runs.get_run(session, run_id)
    reply = checkpoint_out(
        checkpoints.delete_checkpoint(session, run_id, checkpoint_id)
    )
    hub.publish(run_id, "checkpoint", reply)
    return reply
