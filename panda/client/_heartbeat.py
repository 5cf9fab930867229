"""The long-poll thread that keeps a run alive and learns of pending nudges.

It calls ``POST /api/runs/{run}/heartbeat?wait_s=...``, which the server answers
at once when nudges are pending and otherwise after up to ``wait_s`` seconds,
and files what it learns in a :class:`NudgeInbox`. The babysitter reads the
inbox at a step boundary without any network I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from panda.protocol import CheckpointOut, HeartbeatReply, NudgeOut

logger = logging.getLogger(__name__)

RETRY_S = 1.0
IDLE_S = 0.25


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

    def offer(self, pending: list[PendingNudge]) -> bool:
        """Replace the waiting nudges with the server's list; tell if any is new.

        Nudges already taken are left out (the server lists them until their
        acknowledgement arrives); nudges missing from the list were cancelled.
        """
        with self._lock:
            fresh = {
                item.nudge.id: item
                for item in pending
                if item.nudge.id not in self._taken
            }
            is_new = bool(fresh.keys() - self._waiting.keys())
            self._waiting = fresh
            return is_new

    def take(self) -> list[PendingNudge]:
        """Return the waiting nudges, oldest first, and mark them taken."""
        with self._lock:
            taken = sorted(self._waiting.values(), key=lambda item: item.nudge.id)
            self._taken.update(self._waiting)
            self._waiting = {}
            return taken

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
        response = self._client.post(
            f"/api/runs/{run_id}/heartbeat",
            params={"wait_s": self._wait_s},
            json={"step": self._last_step()},
            timeout=self._wait_s + 10.0,
        )
        if response.status_code != 200:
            logger.debug("panda heartbeat answered %d", response.status_code)
            return RETRY_S

        reply = HeartbeatReply.model_validate(response.json())
        self.status = reply.status
        pending = [self._resolve(run_id, nudge) for nudge in reply.pending]
        is_new = self._inbox.offer(pending)
        # The server lists a taken nudge until its ack lands; pause a little so
        # that window does not turn the long poll into a busy loop.
        # TODO: A nudge requested during that pause waits up to IDLE_S longer
        # (the worst case of the nudge latency benchmark). Sending the ids this
        # inbox already holds with the heartbeat, for the server to wait past
        # them, would let every poll be a full long poll and drop the pause.
        return 0.0 if is_new or not pending else IDLE_S

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
