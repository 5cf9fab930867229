"""In-process fan-out of live events to server-sent-event streams.

Routes publish after they commit, from threadpool threads or from the event
loop; each subscriber owns a bounded asyncio queue on the server's loop. A
subscriber that falls too far behind is cut off (its stream ends and the
browser's EventSource reconnects and reloads) rather than slowing the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000
KEEPALIVE_S = 15.0


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name and its JSON data on one line."""

    name: str
    data: str

    def encode(self) -> str:
        """Return the event in the text/event-stream format."""
        return f"event: {self.name}\ndata: {self.data}\n\n"


@dataclass(eq=False)
class Subscription:
    """A queue of events for one run, or of ``run`` events of all runs.

    ``names``, when given, are the only events delivered; None means all.
    """

    run_id: int | None
    names: frozenset[str] | None = None
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )

    async def next_event(self, timeout_s: float) -> Event | None:
        """Wait for the next event; None when the hub closed this subscription.

        Raises:
            TimeoutError: nothing arrived within ``timeout_s``.
        """
        return await asyncio.wait_for(self.queue.get(), timeout_s)

    async def wait_for(self, name: str, timeout_s: float) -> bool:
        """Wait until an event called ``name`` arrives; False on timeout or close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (remaining := deadline - loop.time()) > 0:
            try:
                event = await self.next_event(remaining)
            except TimeoutError:
                return False
            if event is None:
                return False
            if event.name == name:
                return True
        return False


class LiveHub:
    """Deliver published events to the subscriptions of their run."""

    def __init__(self, *, keepalive_s: float = KEEPALIVE_S) -> None:
        self.keepalive_s = keepalive_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._by_run: dict[int | None, set[Subscription]] = {}
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` from now on: the loop the server runs on."""
        self._loop = loop
        self._closed = False

    def subscribe(
        self, run_id: int | None, names: Iterable[str] | None = None
    ) -> Subscription:
        """Start receiving the events of ``run_id``, or None for every run's
        ``run`` events; only those called one of ``names`` when given. Call
        from the event loop.
        """
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        wanted = None if names is None else frozenset(names)
        subscription = Subscription(run_id, wanted)
        with self._lock:
            self._by_run.setdefault(run_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``."""
        with self._lock:
            subscribers = self._by_run.get(subscription.run_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_run[subscription.run_id]

    def has_subscribers(self, run_id: int, name: str) -> bool:
        """Return whether an event ``name`` of the run would reach anyone.

        Lets a publisher skip building a payload nobody reads; safe from any
        thread.
        """
        with self._lock:
            groups = [self._by_run.get(run_id, ())]
            if name == "run":
                groups.append(self._by_run.get(None, ()))
            return any(
                s.names is None or name in s.names for group in groups for s in group
            )

    def publish(self, run_id: int, name: str, data: BaseModel | str) -> None:
        """Send an event to the run's subscribers; safe from any thread."""
        loop = self._loop
        if loop is None or self._closed or loop.is_closed():
            return
        payload = data if isinstance(data, str) else data.model_dump_json()
        event = Event(name, payload)
        try:
            loop.call_soon_threadsafe(self._deliver, run_id, event)
        except RuntimeError:
            logger.debug("event loop closed; dropped %s event of run %d", name, run_id)

    def _deliver(self, run_id: int, event: Event) -> None:
        with self._lock:
            targets = list(self._by_run.get(run_id, ()))
            if event.name == "run":
                targets.extend(self._by_run.get(None, ()))
        for subscription in targets:
            if subscription.names is not None and event.name not in subscription.names:
                continue
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning(
                    "a live stream of run %s fell %d events behind; closing it so "
                    "the browser reconnects and reloads",
                    subscription.run_id,
                    QUEUE_SIZE,
                )
                self.unsubscribe(subscription)
                _replace_with_end(subscription.queue)

    def close(self) -> None:
        """End every subscription; call from the event loop at shutdown."""
        self._closed = True
        with self._lock:
            subscriptions = [s for group in self._by_run.values() for s in group]
            self._by_run.clear()
        for subscription in subscriptions:
            _replace_with_end(subscription.queue)

    async def stream(
        self,
        subscription: Subscription,
        *,
        is_disconnected: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[str]:
        """Yield a subscription's events as text/event-stream chunks.

        Sends a comment every ``keepalive_s`` so proxies keep the connection
        open, and ends when the client leaves or the hub closes.
        """
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    event = await subscription.next_event(self.keepalive_s)
                except TimeoutError:
                    if await is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    return
                yield event.encode()
        finally:
            self.unsubscribe(subscription)


def _replace_with_end(queue: asyncio.Queue[Event | None]) -> None:
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(None)
