"""The long-poll thread that keeps a run alive and learns of pending nudges.

It calls ``POST /api/runs/{run}/heartbeat?wait_s=...`` with the ids of the
nudges its :class:`NudgeInbox` already holds. The server answers as soon as the
pending nudges differ from those (one is new, or a held one was applied or
cancelled) and otherwise after up to ``wait_s`` seconds, so every poll is a
full long poll. The babysitter reads the inbox at a step boundary without any
network I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from panda.protocol import (
    HEARTBEAT_HELD_MAX,
    CheckpointOut,
    HeartbeatReply,
    NudgeOut,
)

logger = logging.getLogger(__name__)

RETRY_S = 1.0


@dataclass(frozen=True)
class PendingNudge:
    """A nudge waiting to be applied, with what an undo must load."""

    nudge: NudgeOut
    checkpoint: CheckpointOut | None = None
    """For an undo: the checkpoint taken just before the nudge it takes back."""


class NudgeInbox:
    """Pending nudges fetched by the heartbeat thread, read by the babysitter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, PendingNudge] = {}
        self._taken: set[int] = set()

    def offer(self, pending: list[PendingNudge]) -> None:
        """Replace the waiting nudges with the server's list.

        Nudges already taken are left out (the server lists them until their
        acknowledgement arrives); nudges missing from the list were cancelled,
        or, if taken, acknowledged, and are forgotten: a nudge never becomes
        pending again.
        """
        with self._lock:
            listed = {item.nudge.id for item in pending}
            self._taken &= listed
            self._waiting = {
                item.nudge.id: item
                for item in pending
                if item.nudge.id not in self._taken
            }

    def take(self) -> list[PendingNudge]:
        """Return the waiting nudges, oldest first, and mark them taken."""
        with self._lock:
            taken = sorted(self._waiting.values(), key=lambda item: item.nudge.id)
            self._taken.update(self._waiting)
            self._waiting = {}
            return taken

    def held(self) -> list[int]:
        """Return the ids of the nudges waiting or taken, lowest first.

        These are the pending nudges the server has already told of; the
        heartbeat sends them so that its long poll waits past them.
        """
        with self._lock:
            return sorted(self._waiting.keys() | self._taken)

    def known(self, nudge_id: int) -> PendingNudge | None:
        """Return the waiting entry for ``nudge_id``, if any."""
        with self._lock:
            return self._waiting.get(nudge_id)


class NudgeWatcher(threading.Thread):
    """Long-poll the heartbeat endpoint and fill the inbox."""

    def __init__(
        self,
        *,
        client: httpx.Client,
        inbox: NudgeInbox,
        run_id: Callable[[], int | None],
        last_step: Callable[[], int | None],
        wait_s: float,
    ) -> None:
        super().__init__(name="panda-heartbeat", daemon=True)
        self.status: str | None = None
        self._client = client
        self._inbox = inbox
        self._run_id = run_id
        self._last_step = last_step
        self._wait_s = wait_s
        self._stopping = threading.Event()

    def stop(self) -> None:
        """End the thread, cutting short a poll in flight."""
        self._stopping.set()
        # Closing the client from here aborts the waiting request, so neither
        # this thread nor the server keeps a long poll open for a dead run.
        self._client.close()

    def run(self) -> None:
        """Poll until stopped; errors only delay the next poll."""
        while not self._stopping.is_set():
            run_id = self._run_id()
            if run_id is None:
                self._stopping.wait(RETRY_S)
                continue
            try:
                pause_s = self._poll(run_id)
            except Exception as error:
                if self._stopping.is_set():
                    return
                if not isinstance(error, httpx.HTTPError | ValueError):
                    logger.exception("panda heartbeat hit an unexpected error")
                logger.debug("panda heartbeat failed: %s", error)
                pause_s = RETRY_S
            self._stopping.wait(pause_s)

    def _poll(self, run_id: int) -> float:
        """Make one heartbeat call; return how long to wait before the next."""
        held = self._inbox.held()
        response = self._client.post(
            f"/api/runs/{run_id}/heartbeat",
            params={"wait_s": self._wait_s},
            json={"step": self._last_step(), "held": held[:HEARTBEAT_HELD_MAX]},
            timeout=self._wait_s + 10.0,
        )
        if response.status_code != 200:
            logger.debug("panda heartbeat answered %d", response.status_code)
            return RETRY_S

        reply = HeartbeatReply.model_validate(response.json())
        self.status = reply.status
        pending = [self._resolve(run_id, nudge) for nudge in reply.pending]
        self._inbox.offer(pending)
        # The server answers at once for a run that is not running, or when it
        # was told of only some of the held nudges; pause then, so the long
        # poll does not turn into a busy loop.
        if reply.status != "running" or len(held) > HEARTBEAT_HELD_MAX:
            return RETRY_S
        return 0.0

    def _resolve(self, run_id: int, nudge: NudgeOut) -> PendingNudge:
        """Attach to an undo the checkpoint it must load (fetched once)."""
        if nudge.action != "undo":
            return PendingNudge(nudge)
        known = self._inbox.known(nudge.id)
        if known is not None and known.checkpoint is not None:
            return known

        checkpoint_id = nudge.checkpoint
        if checkpoint_id is None and nudge.undoes is not None:
            response = self._client.get(f"/api/runs/{run_id}/nudges/{nudge.undoes}")
            if response.status_code == 200:
                checkpoint_id = NudgeOut.model_validate(response.json()).checkpoint
        if checkpoint_id is None:
            return PendingNudge(nudge)

        response = self._client.get(f"/api/runs/{run_id}/checkpoints")
        if response.status_code != 200:
            return PendingNudge(nudge)
        for entry in response.json():
            checkpoint = CheckpointOut.model_validate(entry)
            if checkpoint.id == checkpoint_id:
                return PendingNudge(nudge, checkpoint)
        return PendingNudge(nudge)
