"""Resume a run from a checkpoint, or fork a new run off one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from panda.errors import CheckpointNotFound
from panda.store.checkpoints import latest_on_line, usable_checkpoint
from panda.store.models import Branch, Checkpoint, Nudge, Run, utcnow
from panda.store.nudges import replay_nudges
from panda.store.runs import RUNNING, create_run, get_run
from panda.store.timelines import current_line, line_from, start_branch

logger = logging.getLogger(__name__)


@dataclass
class Resumption:
    """The new branch of a resumed run, its checkpoint and the nudges to replay."""

    run: Run
    branch: Branch
    checkpoint: Checkpoint
    replay: list[Nudge]


def resume_run(session: Session, run_id: int, checkpoint_id: int | None) -> Resumption:
    """Start a branch at a checkpoint's step, make it current, and commit.

    The checkpoint is the given one or else the latest live one on the current
    line. The new branch leaves the branch that holds the checkpoint, and the
    run is running again. See :func:`panda.store.nudges.replay_nudges` for the
    nudges the resumed process must apply after loading the checkpoint.

    Raises:
        CheckpointNotFound: no such checkpoint, or none on the line.
    """
    run = get_run(session, run_id)
    segments = current_line(session, run)
    if checkpoint_id is not None:
        checkpoint = usable_checkpoint(session, run, segments, checkpoint_id)
    else:
        latest = latest_on_line(session, segments)
        if latest is None:
            raise CheckpointNotFound(
                f"run {run.id} has no checkpoint on its current line to resume from"
            )
        checkpoint = latest

    branch = start_branch(
        session,
        run,
        parent_id=checkpoint.branch_id,
        start_step=checkpoint.step,
        reason="resume",
        checkpoint_id=checkpoint.id,
    )
    run.status = RUNNING
    run.finished_at = None
    run.heartbeat_at = utcnow()
    replay = replay_nudges(session, line_from(session, branch.id), checkpoint)
    session.commit()
    logger.info(
        "run %d resumed from checkpoint %d at step %d on branch %d",
        run.id,
        checkpoint.id,
        checkpoint.step,
        branch.id,
    )
    return Resumption(run, branch, checkpoint, replay)


def fork_run(
    session: Session,
    run_id: int,
    checkpoint_id: int,
    *,
    name: str | None,
    config: dict[str, Any],
) -> Run:
    """Create a run that goes on from a checkpoint of another, and commit.

    Its config is the parent's overlaid with ``config``; its root branch leaves
    the branch holding the checkpoint at the checkpoint's step.

    Raises:
        CheckpointNotFound: no such live checkpoint on the parent run.
    """
    parent = get_run(session, run_id)
    segments = current_line(session, parent)
    checkpoint = usable_checkpoint(session, parent, segments, checkpoint_id)
    root_parent = session.get(Branch, checkpoint.branch_id)
    fork = create_run(
        session,
        name=name or f"{parent.name} fork",
        config={**parent.config, **config},
        command=parent.command,
        cwd=parent.cwd,
        root_parent=root_parent,
        root_start_step=checkpoint.step,
        root_checkpoint_id=checkpoint.id,
        parent_run_id=parent.id,
    )
    logger.info(
        "run %d forked from run %d at step %d", fork.id, parent.id, checkpoint.step
    )
    return fork
