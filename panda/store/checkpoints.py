"""The index of checkpoint files; the files themselves stay on the training side.

Paths are stored exactly as the client sent them; nothing here opens them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from panda.errors import CheckpointNotFound, Conflict
from panda.store.metrics import resolve_branch
from panda.store.models import Branch, Checkpoint, Nudge, Run, utcnow
from panda.store.timelines import Segment, find_segment


def create_checkpoint(
    session: Session,
    run: Run,
    *,
    step: int,
    path: str,
    size_bytes: int,
    sha256: str,
    reason: str,
    branch_id: int | None,
) -> Checkpoint:
    """Index a checkpoint the training process has written, and commit."""
    checkpoint = Checkpoint(
        run_id=run.id,
        branch_id=resolve_branch(session, run, branch_id),
        step=step,
        path=path,
        size_bytes=size_bytes,
        sha256=sha256,
        reason=reason,
        created_at=utcnow(),
        deleted=False,
    )
    session.add(checkpoint)
    session.commit()
    return checkpoint


def list_checkpoints(session: Session, run_id: int) -> Sequence[Checkpoint]:
    """Return the run's checkpoints, oldest first, deleted ones included."""
    query = select(Checkpoint).where(Checkpoint.run_id == run_id)
    return session.scalars(query.order_by(Checkpoint.id)).all()


def get_checkpoint(session: Session, run_id: int, checkpoint_id: int) -> Checkpoint:
    """Return checkpoint ``checkpoint_id`` of run ``run_id``.

    Raises:
        CheckpointNotFound: no such checkpoint on that run.
    """
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.run_id != run_id:
        raise CheckpointNotFound(
            f"checkpoint {checkpoint_id} of run {run_id} not found"
        )
    return checkpoint


def usable_checkpoint(
    session: Session, run: Run, segments: Sequence[Segment], checkpoint_id: int
) -> Checkpoint:
    """Return a live checkpoint that is the run's own or lies on its current line.

    Raises:
        CheckpointNotFound: none such, or it was deleted.
    """
    checkpoint = session.get(Checkpoint, checkpoint_id)
    on_line = checkpoint is not None and (
        checkpoint.run_id == run.id
        or find_segment(segments, checkpoint.branch_id, checkpoint.step, boundary=True)
        is not None
    )
    if checkpoint is None or not on_line:
        raise CheckpointNotFound(
            f"checkpoint {checkpoint_id} of run {run.id} not found"
        )
    if checkpoint.deleted:
        raise CheckpointNotFound(
            f"checkpoint {checkpoint_id} of run {run.id} was deleted; pick another"
        )
    return checkpoint


def latest_on_line(session: Session, segments: Sequence[Segment]) -> Checkpoint | None:
    """Return the live checkpoint with the highest step on the line, if any.

    A checkpoint taken exactly where the line leaves a branch counts: it is the
    state the next branch starts from.
    """
    branch_ids = [segment.branch_id for segment in segments]
    query = select(Checkpoint).where(
        Checkpoint.branch_id.in_(branch_ids), Checkpoint.deleted.is_(False)
    )
    on_line = [
        checkpoint
        for checkpoint in session.scalars(query)
        if find_segment(segments, checkpoint.branch_id, checkpoint.step, boundary=True)
    ]
    return max(on_line, key=lambda c: (c.step, c.id), default=None)


def delete_checkpoint(session: Session, run_id: int, checkpoint_id: int) -> Checkpoint:
    """Mark the checkpoint deleted and commit; the file is the client's to remove.

    Raises:
        Conflict: a nudge or a branch still refers to it.
    """
    checkpoint = get_checkpoint(session, run_id, checkpoint_id)
    nudge_id = session.scalar(
        select(Nudge.id).where(Nudge.checkpoint_id == checkpoint.id).limit(1)
    )
    if nudge_id is not None:
        raise Conflict(
            f"checkpoint {checkpoint.id} is kept: nudge {nudge_id} can be undone to it"
        )
    branch_id = session.scalar(
        select(Branch.id).where(Branch.checkpoint_id == checkpoint.id).limit(1)
    )
    if branch_id is not None:
        raise Conflict(
            f"checkpoint {checkpoint.id} is kept: branch {branch_id} starts from it"
        )
    checkpoint.deleted = True
    session.commit()
    return checkpoint
