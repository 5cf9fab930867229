"""The background thread that carries a run's points and events to the server.

The training thread appends to an outbox (a deque: appending never blocks) and
this thread drains it in order over one kept-alive ``httpx.Client``: metric
points go out in batches, and the events the babysitter queues (register a
checkpoint, acknowledge a nudge, delete a checkpoint, end the run) go out
between them in exactly the order they were queued. While the server is away
every record goes to the spool instead and is replayed, still in order, once
the server answers again.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, KeysView
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pydantic_core

from panda.client._spool import Spool
from panda.protocol import NudgeOut, RunOut, encode_value

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
BATCH_MAX_POINTS = 20_000
_JSON_HEADERS = {"content-type": "application/json"}


class CheckpointTicket:
    """A checkpoint handed to the sender; its server id arrives once registered."""

    def __init__(self, local_id: int, *, step: int, path: str) -> None:
        self.local_id = local_id
        self.step = step
        self.path = path
        self.id: int | None = None
        self._registered = threading.Event()

    def wait(self, timeout_s: float) -> int | None:
        """Wait until the server has the checkpoint; return its id, or None."""
        self._registered.wait(timeout_s)
        return self.id

    def _set_id(self, checkpoint_id: int) -> None:
        self.id = checkpoint_id
        self._registered.set()

    def __repr__(self) -> str:
        return f"CheckpointTicket(step={self.step}, id={self.id}, path={self.path!r})"


class ServerDown(Exception):
    """The server did not answer, or answered with a 5xx: try again later."""


class Sender(threading.Thread):
    """Drain the outbox to the server in order, spooling while it is away."""

    def __init__(
        self,
        *,
        client: httpx.Client,
        spool: Spool,
        run_id: int | None,
        branch: int | None,
        flush_interval_s: float,
    ) -> None:
        super().__init__(name="panda-sender", daemon=True)
        self.outbox: deque[Any] = deque()
        self.run_id = run_id
        self.branch = branch
        self.spool = spool
        self.tickets: dict[int, CheckpointTicket] = {}
        self._client = client
        self._flush_interval_s = flush_interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._waiting_barriers: list[threading.Event] = []
        self._retry_s = RETRY_FIRST_S
        self._next_retry = 0.0
        self._server_down = False
        # Set while the thread waits for its next tick; _idle_since is when it
        # last finished sending (monotonic seconds).
        self._waiting = False
        self._idle_since = 0.0
        # A points request may be in flight on the poster thread while this
        # thread gathers the next batch; anything else waits for it first.
        self._poster = _Poster()
        self._in_flight: tuple[dict[str, Any], Future[None]] | None = None

    def wake(self) -> None:
        """Ask the thread to drain now rather than at its next tick."""
        # set() takes a lock and notifies; skip it while a wake-up is pending.
        if not self._wake.is_set():
            self._wake.set()

    def wake_if_idle(self) -> None:
        """Wake the thread if it has sent nothing for a flush interval.

        A point logged after a quiet spell then goes out at once; points logged
        soon after a send wait for the next tick and share a request. Costs the
        caller two reads and a clock call when nothing needs waking.
        """
        if (
            self._waiting
            and time.monotonic() - self._idle_since >= self._flush_interval_s
        ):
            self._waiting = False
            self._wake.set()

    def barrier(self) -> threading.Event:
        """Queue a marker; the event is set once everything before it arrived."""
        event = threading.Event()
        self.outbox.append(event)
        self._wake.set()
        return event

    def stop(self, timeout_s: float) -> None:
        """Drain what is queued, then end the thread and close the connection."""
        self._stopping.set()
        self._wake.set()
        self.join(timeout_s)
        self._poster.stop()
        self._client.close()
        self.spool.close()

    def run(self) -> None:
        """Drain every tick until stopped; never let an error end the thread."""
        while True:
            stopping = self._stopping.is_set()
            sent = bool(self.outbox)
            try:
                self._drain()
                if self.spool.pending and time.monotonic() >= self._next_retry:
                    self._replay()
            except Exception:
                logger.exception("panda sender hit an unexpected error; continuing")
            if stopping and not self.outbox:
                self._settle()
                return
            if sent:
                self._idle_since = time.monotonic()
            self._waiting = True
            self._wake.wait(self._flush_interval_s)
            self._waiting = False
            self._wake.clear()

    # -- draining -------------------------------------------------------------

    def _drain(self) -> None:
        batch = _Batch()
        while self.outbox:
            item = self.outbox.popleft()
            if type(item) is tuple:
                batch.add(*item)
                if batch.count >= BATCH_MAX_POINTS:
                    self._dispatch(batch.record())
                    batch = _Batch()
                continue

            if batch.count:
                self._dispatch(batch.record())
                batch = _Batch()
            if isinstance(item, threading.Event):
                self._hold_barrier(item)
            else:
                self._dispatch(item)
        if batch.count:
            self._dispatch(batch.record())

    def _hold_barrier(self, barrier: threading.Event) -> None:
        self._settle()
        if self.spool.pending:
            self._waiting_barriers.append(barrier)
        else:
            barrier.set()

    def _dispatch(self, record: dict[str, Any]) -> None:
        self._settle()
        if not self.spool.pending:
            if record["op"] == "points" and self.run_id is not None:
                # Sent while this thread gathers the next batch: the server
                # stores one batch as the client builds the next. Points may
                # arrive in any order; everything else waits in _settle.
                future = self._poster.submit(lambda: self._send_points(record))
                self._in_flight = (record, future)
                return
            try:
                self._execute(record)
                return
            except ServerDown as error:
                self._note_down(error)
        self.spool.append(record, droppable=record["op"] == "points")

    def _settle(self) -> None:
        """Wait for the points request in flight; spool it if the server was away."""
        if self._in_flight is None:
            return
        record, future = self._in_flight
        self._in_flight = None
        try:
            future.result()
        except ServerDown as error:
            self._note_down(error)
            self.spool.append(record, droppable=True)
        except Exception:
            # As in run(): an unexpected error costs this batch, never the
            # records after it.
            logger.exception("panda sender hit an unexpected error; continuing")

    def _replay(self) -> None:
        self._settle()
        logger.debug("replaying spool %s", self.spool.path)
        for end_offset, record in self.spool.records():
            try:
                self._execute(record)
            except ServerDown as error:
                self._note_down(error)
                return
            except Exception:
                # Not the server's absence: trying again would fail the same
                # way and hold back every record behind this one.
                logger.exception(
                    "panda dropped a spooled %r record it cannot send",
                    record.get("op"),
                )
            self.spool.mark_replayed(end_offset)

        if self._server_down:
            logger.warning("panda server is back; the spooled records were replayed")
        self._server_down = False
        self._retry_s = RETRY_FIRST_S
        for barrier in self._waiting_barriers:
            barrier.set()
        self._waiting_barriers.clear()

    def _note_down(self, error: ServerDown) -> None:
        if not self._server_down:
            logger.warning(
                "panda server %s unreachable (%s); spooling to %s (limit %d bytes) "
                "and retrying; training goes on",
                self._client.base_url,
                error,
                self.spool.path,
                self.spool.max_bytes,
            )
        else:
            logger.debug("panda server still unreachable: %s", error)
        self._server_down = True
        self._next_retry = time.monotonic() + self._retry_s
        self._retry_s = min(2 * self._retry_s, RETRY_MAX_S)

    # -- one record -------------------------------------------------------------

    def _execute(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "create":
            reply = self._request("POST", "/api/runs", record["body"])
            if reply is not None:
                run = RunOut.model_validate(reply)
                self.run_id, self.branch = run.id, run.branch
                logger.info("panda run %d created on %s", run.id, self._client.base_url)
            return
        if self.run_id is None:
            logger.error("panda dropped a %r record: the run was never created", op)
            return

        handler = {
            "points": self._send_points,
            "checkpoint": self._send_checkpoint,
            "ack": self._send_ack,
            "delete_checkpoint": self._send_delete_checkpoint,
            "finish": self._send_finish,
        }[op]
        handler(record)

    def _send_points(self, record: dict[str, Any]) -> None:
        body = {"columns": record["columns"], "branch": self.branch}
        self._request("POST", f"/api/runs/{self.run_id}/metrics", body)
        logger.debug("sent %d points", record["count"])

    def _send_checkpoint(self, record: dict[str, Any]) -> None:
        body = {**record["body"], "branch": self.branch}
        reply = self._request("POST", f"/api/runs/{self.run_id}/checkpoints", body)
        ticket = self.tickets.get(record["ticket"])
        if reply is not None and ticket is not None:
            ticket._set_id(int(reply["id"]))

    def _send_ack(self, record: dict[str, Any]) -> None:
        body = dict(record["body"])
        ticket = self.tickets.get(record.get("ticket", -1))
        if ticket is not None:
            body["checkpoint"] = ticket.id
        path = f"/api/runs/{self.run_id}/nudges/{record['nudge']}/ack"
        reply = self._request("POST", path, body, quiet_statuses=(409,))
        if reply is None:
            return
        nudge = NudgeOut.model_validate(reply)
        if nudge.branch is not None and nudge.action == "undo":
            logger.info("panda run %d now logs to branch %d", nudge.run, nudge.branch)
            self.branch = nudge.branch

    def _send_delete_checkpoint(self, record: dict[str, Any]) -> None:
        ticket = self.tickets.get(record.get("ticket", -1))
        checkpoint_id = ticket.id if ticket is not None else record.get("checkpoint")
        if checkpoint_id is None:
            return
        path = f"/api/runs/{self.run_id}/checkpoints/{checkpoint_id}"
        reply = self._request("DELETE", path, None, quiet_statuses=(409,))
        if reply is not None and record.get("remove_file"):
            Path(record["path"]).unlink(missing_ok=True)

    def _send_finish(self, record: dict[str, Any]) -> None:
        body = {"status": record["status"]}
        self._request("PATCH", f"/api/runs/{self.run_id}", body)
        logger.info("panda run %d marked %s", self.run_id, record["status"])

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        quiet_statuses: tuple[int, ...] = (),
    ) -> Any:
        """Send one request; return its JSON, or None if the server refused it."""
        # pydantic's encoder: about ten times faster than json.dumps on
        # batches of numbers, the bulk of what goes out.
        content = None if body is None else pydantic_core.to_json(body)
        try:
            response = self._client.request(
                method, path, content=content, headers=_JSON_HEADERS
            )
        except httpx.TransportError as error:
            raise ServerDown(f"{type(error).__name__}: {error}") from error
        if response.status_code >= 500:
            raise ServerDown(f"{method} {path} answered {response.status_code}")
        if response.status_code >= 400:
            level = (
                logging.INFO
                if response.status_code in quiet_statuses
                else logging.ERROR
            )
            logger.log(
                level,
                "panda server refused %s %s (%d): %s; not retrying",
                method,
                path,
                response.status_code,
                _detail(response),
            )
            return None
        return response.json()


class _Poster:
    """A daemon thread that runs one submitted call at a time, in order."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], None], Future[None]] | None]
        self._calls = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, call: Callable[[], None]) -> Future[None]:
        """Queue ``call``; the future holds its outcome."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="panda-poster", daemon=True
            )
            self._thread.start()
        future: Future[None] = Future()
        self._calls.put((call, future))
        return future

    def stop(self) -> None:
        """End the thread once the queued calls are done."""
        if self._thread is not None:
            self._calls.put(None)

    def _work(self) -> None:
        while (item := self._calls.get()) is not None:
            call, future = item
            try:
                call()
            except BaseException as error:  # handed to whoever waits on it
                future.set_exception(error)
            else:
                future.set_result(None)


class _Batch:
    """Points of consecutive ``log`` calls, turned into parallel columns per key."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float, dict[str, Any]]] = []
        self.count = 0

    def add(self, step: int, logged_at: float, values: dict[str, Any]) -> None:
        """Add one ``log`` call: its step, its time and its values by key."""
        self.calls.append((step, logged_at, values))
        self.count += len(values)

    def record(self) -> dict[str, Any]:
        """Return the batch as a ``points`` record, ready for JSON."""
        columns: dict[str, tuple[list[int], list[Any], list[float]]] = {}
        # Calls that log the same keys, the usual case, become columns through
        # C-level map() and extend(): no Python work per point.
        for keys, group in itertools.groupby(self.calls, key=_logged_keys):
            calls = list(group)
            steps = list(map(_step_of, calls))
            times = list(map(_time_of, calls))
            logged = list(map(_values_of, calls))
            for key in keys:
                column = columns.get(key)
                if column is None:
                    column = columns[key] = ([], [], [])
                column[0].extend(steps)
                column[1].extend(map(operator.itemgetter(key), logged))
                column[2].extend(times)
        wire = {
            key: {"steps": steps, "values": _wire_values(values), "times": times}
            for key, (steps, values, times) in columns.items()
        }
        return {"op": "points", "count": self.count, "columns": wire}


_step_of = operator.itemgetter(0)
_time_of = operator.itemgetter(1)
_values_of = operator.itemgetter(2)


def _logged_keys(call: tuple[int, float, dict[str, Any]]) -> KeysView[str]:
    return call[2].keys()


def _wire_values(values: list[Any]) -> list[float | str]:
    # float() of a tensor is a device sync (.item()): it happens here, in the
    # sender thread, never in the training thread.
    numbers = list(map(float, values))
    if math.isfinite(sum(numbers)):
        return numbers  # type: ignore[return-value]
    # Some value is not finite (or the sum overflowed): spell those out.
    return [encode_value(value) for value in numbers]


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]
