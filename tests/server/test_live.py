"""The live hub on its own: event-name filters and the subscriber check."""

from __future__ import annotations

import asyncio

from panda.server.live import LiveHub


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

    assert asyncio.run(scenario()) == ["nudge"]


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

    asyncio.run(scenario())
