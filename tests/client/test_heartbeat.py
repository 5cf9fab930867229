"""NudgeInbox: what the heartbeat sends as held, and what it forgets."""

from __future__ import annotations

from datetime import UTC, datetime

from panda.client._heartbeat import NudgeInbox, PendingNudge
from panda.protocol import NudgeOut


def _pending(*nudge_ids: int) -> list[PendingNudge]:
    return [
        PendingNudge(
            NudgeOut(
                id=nudge_id,
                run=1,
                action="set",
                param="lr",
                value=0.01,
                old_value=None,
                group=None,
                factor=None,
                status="pending",
                reason=None,
                note=None,
                requested_at=datetime.now(UTC),
                applied_at=None,
                applied_step=None,
                checkpoint=None,
            )
        )
        for nudge_id in nudge_ids
    ]


def test_inbox_held_lists_waiting_and_taken_nudges() -> None:
    inbox = NudgeInbox()
    inbox.offer(_pending(1))
    [taken] = inbox.take()
    inbox.offer(_pending(1, 2))

    assert taken.nudge.id == 1
    assert inbox.held() == [1, 2]
    assert [item.nudge.id for item in inbox.take()] == [2]


def test_inbox_forgets_taken_nudge_once_server_stops_listing_it() -> None:
    inbox = NudgeInbox()
    inbox.offer(_pending(1, 2))
    inbox.take()
    inbox.offer(_pending(2))

    assert inbox.held() == [2]
    inbox.offer([])
    assert inbox.held() == []


def test_inbox_drops_waiting_nudge_the_server_no_longer_lists() -> None:
    inbox = NudgeInbox()
    inbox.offer(_pending(1, 2))
    inbox.offer(_pending(2))

    assert inbox.held() == [2]
    assert [item.nudge.id for item in inbox.take()] == [2]
