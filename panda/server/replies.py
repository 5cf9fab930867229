"""Stored rows turned into the reply models of ``panda.protocol``."""

from __future__ import annotations

from panda.protocol import BranchOut, CheckpointOut, NudgeOut, RunOut
from panda.store.models import Branch, Checkpoint, Nudge, Run
from panda.store.runs import last_values


def run_out(run: Run) -> RunOut:
    """Return the reply for a run."""
    return RunOut(
        id=run.id,
        name=run.name,
        status=run.status,  # type: ignore[arg-type]
        config=run.config,
        created_at=run.created_at,
        updated_at=run.updated_at,
        heartbeat_at=run.heartbeat_at,
        finished_at=run.finished_at,
        last_step=run.last_step,
        last_values=last_values(run),
        branch=run.current_branch_id,
        parent_run=run.parent_run_id,
        parent_step=run.parent_step,
        command=run.command,
        cwd=run.cwd,
    )


def nudge_out(nudge: Nudge) -> NudgeOut:
    """Return the reply for a nudge."""
    return NudgeOut(
        id=nudge.id,
        run=nudge.run_id,
        action=nudge.action,  # type: ignore[arg-type]
        param=nudge.param,
        value=nudge.value,
        old_value=nudge.old_value,
        group=nudge.param_group,
        factor=nudge.factor,
        status=nudge.status,  # type: ignore[arg-type]
        reason=nudge.reason,
        note=nudge.note,
        requested_at=nudge.requested_at,
        applied_at=nudge.applied_at,
        applied_step=nudge.applied_step,
        checkpoint=nudge.checkpoint_id,
        undoes=nudge.undoes_id,
        branch=nudge.branch_id,
    )


def checkpoint_out(checkpoint: Checkpoint) -> CheckpointOut:
    """Return the reply for a checkpoint."""
    return CheckpointOut(
        id=checkpoint.id,
        run=checkpoint.run_id,
        branch=checkpoint.branch_id,
        step=checkpoint.step,
        path=checkpoint.path,
        size_bytes=checkpoint.size_bytes,
        sha256=checkpoint.sha256,
        reason=checkpoint.reason,  # type: ignore[arg-type]
        created_at=checkpoint.created_at,
        deleted=checkpoint.deleted,
    )


def branch_out(branch: Branch, current_branch_id: int | None) -> BranchOut:
    """Return the reply for a branch."""
    return BranchOut(
        id=branch.id,
        run=branch.run_id,
        parent=branch.parent_id,
        start_step=branch.start_step,
        reason=branch.reason,  # type: ignore[arg-type]
        created_at=branch.created_at,
        current=branch.id == current_branch_id,
    )
