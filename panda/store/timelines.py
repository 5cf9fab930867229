"""The current line of a run through its tree of branches, and the abandoned tails.

A run's *current line* starts at its current branch and walks up the parents:
the current branch contributes its points from its ``start_step`` on, and each
ancestor the steps from its own ``start_step`` up to (not including) the start
step of the child below it. A fork's root branch has a parent in another run, so
a fork's line shows where it came from. Points a branch holds past the point
where the line leaves it form an *abandoned tail*: kept, shown faded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from panda.store.models import Branch, Run, utcnow


@dataclass(frozen=True)
class Segment:
    """Steps ``[start, stop)`` of one branch; ``stop`` None means open-ended."""

    branch_id: int
    start: int
    stop: int | None

    def holds(self, step: int, *, boundary: bool = False) -> bool:
        """Tell whether ``step`` lies in the segment.

        Args:
            boundary: also accept ``step == stop``, where the line leaves this
                branch. A checkpoint taken there is the state the next segment
                starts from.
        """
        if step < self.start:
            return False
        if self.stop is None:
            return True
        return step <= self.stop if boundary else step < self.stop


def line_from(session: Session, branch_id: int) -> list[Segment]:
    """Return the line ending in branch ``branch_id``, newest segment first."""
    segments: list[Segment] = []
    stop: int | None = None
    branch = session.get(Branch, branch_id)
    seen: set[int] = set()
    while branch is not None and branch.id not in seen:
        seen.add(branch.id)
        if stop is None or branch.start_step <= stop:
            segments.append(Segment(branch.id, branch.start_step, stop))
        stop = branch.start_step if stop is None else min(stop, branch.start_step)
        if branch.parent_id is None:
            break
        branch = session.get(Branch, branch.parent_id)
    return segments


def current_line(session: Session, run: Run) -> list[Segment]:
    """Return the run's current line, newest segment first."""
    if run.current_branch_id is None:
        return []
    return line_from(session, run.current_branch_id)


def find_segment(
    segments: Sequence[Segment], branch_id: int, step: int, *, boundary: bool = False
) -> Segment | None:
    """Return the segment of ``branch_id`` that holds ``step``, if any."""
    for segment in segments:
        if segment.branch_id == branch_id and segment.holds(step, boundary=boundary):
            return segment
    return None


def abandoned_tails(session: Session, run: Run) -> list[Segment]:
    """Return the parts of the run's branches that are off its current line.

    A branch on the line contributes the steps from where the line leaves it;
    a branch off the line contributes all of its steps. Oldest branch first.
    """
    line = {segment.branch_id: segment for segment in current_line(session, run)}
    query = select(Branch).where(Branch.run_id == run.id).order_by(Branch.id)
    tails: list[Segment] = []
    for branch in session.scalars(query):
        on_line = line.get(branch.id)
        if on_line is None:
            tails.append(Segment(branch.id, branch.start_step, None))
        elif on_line.stop is not None:
            tails.append(Segment(branch.id, on_line.stop, None))
    return tails


def list_branches(session: Session, run_id: int) -> Sequence[Branch]:
    """Return the run's branches, oldest first."""
    query = select(Branch).where(Branch.run_id == run_id).order_by(Branch.id)
    return session.scalars(query).all()


def start_branch(
    session: Session,
    run: Run,
    *,
    parent_id: int,
    start_step: int,
    reason: str,
    checkpoint_id: int | None,
) -> Branch:
    """Add a branch leaving ``parent_id`` at ``start_step`` and make it current.

    The run's last values forget what lay at ``start_step`` or later. The
    caller commits.
    """
    from panda.store.metrics import trim_last_values

    now = utcnow()
    branch = Branch(
        run_id=run.id,
        parent_id=parent_id,
        start_step=start_step,
        reason=reason,
        checkpoint_id=checkpoint_id,
        created_at=now,
    )
    session.add(branch)
    session.flush()
    run.current_branch_id = branch.id
    run.updated_at = now
    trim_last_values(run, start_step)
    return branch
