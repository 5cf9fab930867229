"""Runs: create, read, end, keep alive, and mark crashed when they fall silent."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from panda.errors import PandaError, RunNotFound
from panda.store.models import Branch, Run, utcnow

logger = logging.getLogger(__name__)

RUNNING = "running"
READY = "ready"
CRASHED = "crashed"
ENDED_STATUSES = ("finished", "failed")


class BranchNotFound(PandaError):
    """No branch has the given id on the given run."""


def get_run(session: Session, run_id: int) -> Run:
    """Return run ``run_id``.

    Raises:
        RunNotFound: there is no such run.
    """
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    return run


def list_runs(session: Session, *, status: str | None = None) -> Sequence[Run]:
    """Return the runs, newest first, optionally only those with ``status``."""
    query = select(Run).order_by(Run.id.desc())
    if status is not None:
        query = query.where(Run.status == status)
    return session.scalars(query).all()


def create_run(
    session: Session,
    *,
    name: str | None,
    config: dict[str, Any],
    command: list[str] | None = None,
    cwd: str | None = None,
    root_parent: Branch | None = None,
    root_start_step: int = 0,
    root_checkpoint_id: int | None = None,
    parent_run_id: int | None = None,
) -> Run:
    """Add a run and its root branch, and commit; the run is running.

    A fork passes ``root_parent``: the branch of another run its root branch
    leaves at ``root_start_step``. It is ready rather than running, with no
    heartbeat, until a process resumes it.
    """
    now = utcnow()
    fork = parent_run_id is not None
    run = Run(
        name=name or "",
        status=READY if fork else RUNNING,
        config=config,
        command=command,
        cwd=cwd,
        created_at=now,
        updated_at=now,
        heartbeat_at=None if fork else now,
        last_values={},
        parent_run_id=parent_run_id,
        parent_step=root_start_step if parent_run_id is not None else None,
    )
    session.add(run)
    session.flush()
    run.name = run.name or f"run {run.id}"

    root = Branch(
        run_id=run.id,
        parent_id=root_parent.id if root_parent is not None else None,
        start_step=root_start_step,
        reason="fork" if root_parent is not None else "start",
        checkpoint_id=root_checkpoint_id,
        created_at=now,
    )
    session.add(root)
    session.flush()
    run.current_branch_id = root.id
    session.commit()
    logger.info("run %d %r started", run.id, run.name)
    return run


def end_run(session: Session, run_id: int, status: str) -> Run:
    """Mark the run ``finished`` or ``failed``, and commit."""
    run = get_run(session, run_id)
    now = utcnow()
    run.status = status
    run.finished_at = now
    run.updated_at = now
    session.commit()
    logger.info("run %d %s", run.id, status)
    return run


def touch_run(run: Run) -> bool:
    """Record a sign of life; a crashed or ready run is running again.

    Returns:
        True if the status changed. The caller commits.
    """
    now = utcnow()
    run.heartbeat_at = now
    if run.status not in (CRASHED, READY):
        return False
    logger.info("run %d has a live process again (was %s)", run.id, run.status)
    run.status = RUNNING
    run.updated_at = now
    return True


def mark_crashed_runs(session: Session, *, timeout_s: float) -> list[Run]:
    """Mark crashed every running run silent for more than ``timeout_s``; commit.

    Returns:
        The runs just marked.
    """
    now = utcnow()
    deadline = now - timedelta(seconds=timeout_s)
    query = select(Run).where(Run.status == RUNNING, Run.heartbeat_at < deadline)
    runs = list(session.scalars(query))
    for run in runs:
        run.status = CRASHED
        run.updated_at = now
        logger.info(
            "run %d marked crashed: no heartbeat for over %.0f s", run.id, timeout_s
        )
    if runs:
        session.commit()
    return runs


def last_values(run: Run) -> dict[str, float]:
    """Return the value each metric had at its latest step on the current line."""
    return {key: float(entry[1]) for key, entry in run.last_values.items()}


def seconds_since_heartbeat(run: Run, now: datetime | None = None) -> float | None:
    """Return how long the run has been silent, or None if it never spoke."""
    if run.heartbeat_at is None:
        return None
    return ((now or utcnow()) - run.heartbeat_at).total_seconds()
