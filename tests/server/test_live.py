"""The live hub on its own: event-name filters and the subscriber check."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from panda.server.live import LiveHub


def run_in_own_loop(scenario: Coroutine[Any, Any, Any]) -> Any:
    """Run ``scenario`` on a fresh event loop in a fresh thread: the browser
    tests' sync Playwright leaves a loop running in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario).result(timeout=30)


def test_filtered_subscription_receives_only_its_events() -> None:
    async def scenario() -> list[str]:
        hub = LiveHub()
        subscription = hub.subscribe(1, names=("nudge",))
        hub.publish(1, "points", "{}")
        hub.publish(1, "run", "{}")
        hub.publish(1, "nudge", "{}")
        await asyncio.sleep(0)
        names = []
        while not subscription.queue.empty():
            event = subscription.queue.get_nowait()
            assert event is not None
            names.append(event.name)
        return names

    assert run_in_own_loop(scenario()) == ["nudge"]


def test_has_subscribers_follows_names_and_runs() -> None:
    async def scenario() -> None:
        hub = LiveHub()
        heartbeat = hub.subscribe(1, names=("nudge",))
        assert hub.has_subscribers(1, "nudge")
        assert not hub.has_subscribers(1, "points")
        assert not hub.has_subscribers(2, "nudge")

        every_run = hub.subscribe(None)
        assert hub.has_subscribers(2, "run")
        assert not hub.has_subscribers(2, "points")
        hub.unsubscribe(every_run)

        stream = hub.subscribe(1)
        assert hub.has_subscribers(1, "points")
        hub.unsubscribe(stream)
        hub.unsubscribe(heartbeat)
        assert not hub.has_subscribers(1, "nudge")

    run_in_own_loop(scenario())
