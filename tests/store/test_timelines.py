"""The current line through a tree of branches, and the abandoned tails."""

from __future__ import annotations

from panda.store import runs, timelines
from panda.store.db import Database
from panda.store.timelines import Segment


def test_current_line_after_two_branches_walks_to_root(database: Database) -> None:
    with database.session(write=True) as session:
        run = runs.create_run(session, name="r", config={})
        root = run.current_branch_id
        assert root is not None
        first = timelines.start_branch(
            session,
            run,
            parent_id=root,
            start_step=100,
            reason="resume",
            checkpoint_id=None,
        )
        second = timelines.start_branch(
            session,
            run,
            parent_id=first.id,
            start_step=150,
            reason="undo",
            checkpoint_id=None,
        )
        session.commit()

        assert timelines.current_line(session, run) == [
            Segment(second.id, 150, None),
            Segment(first.id, 100, 150),
            Segment(root, 0, 100),
        ]
        assert timelines.abandoned_tails(session, run) == [
            Segment(root, 100, None),
            Segment(first.id, 150, None),
        ]


def test_current_line_off_line_branch_is_a_whole_tail(database: Database) -> None:
    with database.session(write=True) as session:
        run = runs.create_run(session, name="r", config={})
        root = run.current_branch_id
        assert root is not None
        dead = timelines.start_branch(
            session,
            run,
            parent_id=root,
            start_step=50,
            reason="resume",
            checkpoint_id=None,
        )
        timelines.start_branch(
            session,
            run,
            parent_id=root,
            start_step=20,
            reason="undo",
            checkpoint_id=None,
        )
        session.commit()

        assert Segment(dead.id, 50, None) in timelines.abandoned_tails(session, run)


def test_segment_holds_boundary_only_when_asked() -> None:
    segment = Segment(1, 10, 20)

    assert segment.holds(10)
    assert not segment.holds(20)
    assert segment.holds(20, boundary=True)
    assert not segment.holds(9, boundary=True)
