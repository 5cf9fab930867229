"""Nudges: requested changes of lr or momentum, their acknowledgement, and undo.

A nudge moves ``pending`` -> ``applied`` or ``rejected`` (by the hook), or
``pending`` -> ``cancelled`` (by a person). An undo is a nudge with action
``undo``; once applied it starts a branch at the checkpoint taken just before
the nudge it undoes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from panda.errors import Conflict, InvalidNudge, NudgeNotFound, RunNotActive
from panda.store.checkpoints import get_checkpoint
from panda.store.metrics import resolve_branch
from panda.store.models import Branch, Checkpoint, Nudge, Run, utcnow
from panda.store.runs import READY, RUNNING, touch_run
from panda.store.timelines import Segment, find_segment, start_branch

logger = logging.getLogger(__name__)

PARAMS = ("lr", "momentum")
# A param group index beyond this names no optimizer's group; SQLite's JSON would
# also read a larger integer back as a float that no reply model accepts.
GROUP_INDEX_MAX = 2**31 - 1
GROUP_NAME_MAX_CHARS = 200
SET = "set"
UNDO = "undo"
PENDING = "pending"
APPLIED = "applied"


@dataclass
class AckResult:
    """An acknowledged nudge, and the branch an applied undo started."""

    nudge: Nudge
    branch: Branch | None = None
    revived: bool = False


# Bounds well outside any learning rate in use, so that the ratio of two
# accepted values (how a nudge scales a schedule) always fits in a float.
LR_MIN = 1e-12
LR_MAX = 1e4


def check_value(param: str, value: float) -> None:
    """Raise InvalidNudge unless ``value`` is one ``param`` can take."""
    if param not in PARAMS:
        allowed = ", ".join(repr(name) for name in PARAMS)
        raise InvalidNudge(f"body.param: must be one of {allowed}, got {param!r}")
    if not math.isfinite(value):
        raise InvalidNudge(f"body.value: {param} must be a finite number, got {value}")
    if param == "lr" and value <= 0:
        raise InvalidNudge(f"body.value: lr must be > 0, got {value:g}")
    if param == "lr" and not LR_MIN <= value <= LR_MAX:
        raise InvalidNudge(
            f"body.value: lr must be between {LR_MIN:g} and {LR_MAX:g}, got {value:g}"
        )
    if param == "momentum" and not 0 <= value < 1:
        raise InvalidNudge(f"body.value: momentum must be in [0, 1), got {value:g}")


def check_group(group: int | str | None) -> None:
    """Raise InvalidNudge unless ``group`` is None, an index or a group name."""
    if isinstance(group, int) and not 0 <= group <= GROUP_INDEX_MAX:
        raise InvalidNudge(
            f"body.group: a param group index must be in [0, {GROUP_INDEX_MAX}], "
            f"got {group}"
        )
    if isinstance(group, str) and not 0 < len(group) <= GROUP_NAME_MAX_CHARS:
        raise InvalidNudge(
            f"body.group: a param group name must have 1 to {GROUP_NAME_MAX_CHARS} "
            f"characters, got {len(group)}"
        )


def _check_finite(field: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise InvalidNudge(f"body.{field}: must be a finite number, got {value}")


def _require_running(run: Run, *, or_ready: bool = False) -> None:
    if run.status != RUNNING and not (or_ready and run.status == READY):
        raise RunNotActive(
            f"run {run.id} is {run.status}, not running; resume it before nudging"
        )


def create_nudge(
    session: Session,
    run: Run,
    *,
    param: str,
    value: float,
    note: str | None,
    group: int | str | None,
) -> Nudge:
    """Request that the running job set ``param`` to ``value``; commit.

    A fork that is ready takes the nudge at the first step of its first process.

    Raises:
        InvalidNudge: unknown param, a value it can never take, or a group that
            is neither a small index nor a short name.
        RunNotActive: the run is neither running nor a ready fork.
    """
    check_value(param, value)
    check_group(group)
    _require_running(run, or_ready=True)
    nudge = Nudge(
        run_id=run.id,
        action=SET,
        param=param,
        value=value,
        param_group=group,
        status=PENDING,
        note=note,
        requested_at=utcnow(),
    )
    session.add(nudge)
    session.commit()
    return nudge


def request_undo(session: Session, run: Run, nudge_id: int) -> Nudge:
    """Request that an applied nudge be undone from its checkpoint; commit.

    Raises:
        Conflict: the nudge is not an applied ``set`` with a checkpoint, or an
            undo of it is already pending or applied.
        RunNotActive: the run is not running.
    """
    target = get_nudge(session, run.id, nudge_id)
    if target.action != SET or target.status != APPLIED:
        raise Conflict(
            f"nudge {target.id} is {target.action} {target.status}; only an "
            "applied set nudge can be undone"
        )
    if target.checkpoint_id is None:
        raise Conflict(f"nudge {target.id} has no checkpoint to go back to")
    earlier = session.scalar(
        select(Nudge.id).where(
            Nudge.undoes_id == target.id, Nudge.status.in_((PENDING, APPLIED))
        )
    )
    if earlier is not None:
        raise Conflict(f"nudge {target.id} is already undone by nudge {earlier}")
    _require_running(run)

    # Going back to the checkpoint also takes back every nudge applied after it
    # at the same boundary; say so in the history.
    # TODO: Nudges applied together share one checkpoint, so undoing one of them
    # reverts its siblings as well. Sending the siblings with the undo, for the
    # hook to re-apply with their recorded factors as a resume does, would
    # take back only the nudge asked for.
    siblings = list(
        session.scalars(
            select(Nudge.id).where(
                Nudge.checkpoint_id == target.checkpoint_id,
                Nudge.action == SET,
                Nudge.status == APPLIED,
                Nudge.id != target.id,
            )
        )
    )
    note = f"undo nudge {target.id}"
    if siblings:
        listed = ", ".join(str(sibling) for sibling in siblings)
        note += f"; also takes back nudge {listed}, applied at the same step"

    undo = Nudge(
        run_id=run.id,
        action=UNDO,
        param=target.param,
        value=target.old_value,
        old_value=target.value,
        param_group=target.param_group,
        status=PENDING,
        note=note,
        requested_at=utcnow(),
        checkpoint_id=target.checkpoint_id,
        undoes_id=target.id,
    )
    session.add(undo)
    session.commit()
    return undo


def get_nudge(session: Session, run_id: int, nudge_id: int) -> Nudge:
    """Return nudge ``nudge_id`` of run ``run_id``.

    Raises:
        NudgeNotFound: no such nudge on that run.
    """
    nudge = session.get(Nudge, nudge_id)
    if nudge is None or nudge.run_id != run_id:
        raise NudgeNotFound(f"nudge {nudge_id} of run {run_id} not found")
    return nudge


def list_nudges(
    session: Session, run_id: int, *, status: str | None = None
) -> Sequence[Nudge]:
    """Return the run's nudges, oldest first, optionally only with ``status``."""
    query = select(Nudge).where(Nudge.run_id == run_id).order_by(Nudge.id)
    if status is not None:
        query = query.where(Nudge.status == status)
    return session.scalars(query).all()


def cancel_nudge(session: Session, run_id: int, nudge_id: int) -> Nudge:
    """Cancel a pending nudge and commit.

    Raises:
        Conflict: the nudge is no longer pending.
    """
    nudge = get_nudge(session, run_id, nudge_id)
    if nudge.status != PENDING:
        raise Conflict(
            f"nudge {nudge.id} is {nudge.status}; only a pending nudge can be cancelled"
        )
    nudge.status = "cancelled"
    session.commit()
    return nudge


def ack_nudge(
    session: Session,
    run: Run,
    nudge_id: int,
    *,
    status: str,
    step: int | None,
    old_value: float | None,
    factor: float | None,
    checkpoint_id: int | None,
    branch_id: int | None,
    reason: str | None,
) -> AckResult:
    """Record the hook's answer to a pending nudge and commit.

    Sending the same answer again returns the nudge unchanged. An applied undo
    starts a branch at its checkpoint's step, made current.

    Raises:
        Conflict: the nudge already got another answer or was cancelled.
        InvalidNudge: an applied answer without a step, an undo without a
            checkpoint, or a non-finite old value or factor.
    """
    _check_finite("old_value", old_value)
    _check_finite("factor", factor)
    nudge = get_nudge(session, run.id, nudge_id)
    if nudge.status == status:
        return AckResult(nudge)
    if nudge.status != PENDING:
        raise Conflict(
            f"nudge {nudge.id} is already {nudge.status}; it cannot become {status}"
        )
    revived = touch_run(run)
    if status == "rejected":
        nudge.status = status
        nudge.reason = reason
        session.commit()
        logger.info("nudge %d of run %d rejected: %s", nudge.id, run.id, reason)
        return AckResult(nudge, revived=revived)

    if step is None:
        raise InvalidNudge("body.step: an applied nudge needs the step it took effect")
    if checkpoint_id is not None:
        get_checkpoint(session, run.id, checkpoint_id)
    nudge.status = APPLIED
    nudge.applied_at = utcnow()
    nudge.applied_step = step
    nudge.old_value = old_value if old_value is not None else nudge.old_value
    nudge.factor = factor
    nudge.checkpoint_id = checkpoint_id or nudge.checkpoint_id
    nudge.applied_branch_id = resolve_branch(session, run, branch_id)

    branch = _branch_for_undo(session, run, nudge) if nudge.action == UNDO else None
    session.commit()
    logger.info(
        "nudge %d of run %d applied at step %d: %s %s -> %s",
        nudge.id,
        run.id,
        step,
        nudge.param,
        nudge.old_value,
        nudge.value,
    )
    return AckResult(nudge, branch, revived)


def _branch_for_undo(session: Session, run: Run, undo: Nudge) -> Branch:
    if undo.checkpoint_id is None:
        raise InvalidNudge(
            f"body.checkpoint: undo nudge {undo.id} needs the checkpoint it went "
            "back to"
        )
    checkpoint = session.get(Checkpoint, undo.checkpoint_id)
    assert checkpoint is not None  # checked by get_checkpoint or by request_undo
    branch = start_branch(
        session,
        run,
        parent_id=checkpoint.branch_id,
        start_step=checkpoint.step,
        reason=UNDO,
        checkpoint_id=checkpoint.id,
    )
    undo.branch_id = branch.id
    undo.applied_branch_id = branch.id
    return branch


def pending_nudges(session: Session, run_id: int) -> Sequence[Nudge]:
    """Return the run's pending nudges, oldest first."""
    return list_nudges(session, run_id, status=PENDING)


def replay_nudges(
    session: Session, segments: Sequence[Segment], checkpoint: Checkpoint
) -> list[Nudge]:
    """Return the nudges a process resuming from ``checkpoint`` must apply again.

    A checkpoint is taken *before* the nudge it was taken for changes anything,
    and loading it puts back the optimizer's values of that moment. So the
    nudges to replay are the applied ``set`` nudges on the line (``segments``)
    at the checkpoint's step or earlier whose own checkpoint is this one or a
    later one: the nudges applied at that step after the checkpoint was written.
    Nudges taken back by an applied undo are left out. Oldest first.
    """
    branch_ids = [segment.branch_id for segment in segments]
    query = (
        select(Nudge)
        .where(
            Nudge.action == SET,
            Nudge.status == APPLIED,
            Nudge.applied_branch_id.in_(branch_ids),
            Nudge.applied_step <= checkpoint.step,
            Nudge.checkpoint_id >= checkpoint.id,
        )
        .order_by(Nudge.id)
    )
    undone = set(
        session.scalars(
            select(Nudge.undoes_id).where(Nudge.action == UNDO, Nudge.status == APPLIED)
        )
    )
    return [
        nudge
        for nudge in session.scalars(query)
        if nudge.id not in undone
        and nudge.applied_branch_id is not None
        and nudge.applied_step is not None
        and find_segment(
            segments, nudge.applied_branch_id, nudge.applied_step, boundary=True
        )
    ]
