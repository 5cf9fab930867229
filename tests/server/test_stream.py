"""Server-sent events, read from a real uvicorn server."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx


def _read_events(url: str, wanted: int, found: list[tuple[str, Any]]) -> None:
    with httpx.stream("GET", url, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name is not None:
                found.append((name, json.loads(line.removeprefix("data: "))))
                if len(found) >= wanted:
                    return


def _wait_until_subscribed(base: str, reader: threading.Thread) -> None:
    # The first event can only be missed if it is sent before the stream opens.
    reader.join(0.5)


def test_run_stream_delivers_points_and_nudges(live_server: str) -> None:
    with httpx.Client(base_url=live_server) as client:
        run = client.post("/api/runs", json={}).json()
        found: list[tuple[str, Any]] = []
        reader = threading.Thread(
            target=_read_events,
            args=(f"{live_server}/api/runs/{run['id']}/stream", 3, found),
        )
        reader.start()
        _wait_until_subscribed(live_server, reader)

        points = [{"key": "loss", "step": 1, "value": "NaN"}]
        client.post(f"/api/runs/{run['id']}/metrics", json={"points": points})
        client.post(f"/api/runs/{run['id']}/nudges", json={"param": "lr", "value": 0.5})
        reader.join(10)

    names = [name for name, _ in found]
    assert names == ["points", "run", "nudge"]
    assert found[0][1] == {
        "run": run["id"],
        "branch": run["branch"],
        "key": "loss",
        "steps": [1],
        "values": ["NaN"],
        "times": found[0][1]["times"],
    }
    assert found[2][1]["status"] == "pending"


def test_global_stream_delivers_run_events(live_server: str) -> None:
    found: list[tuple[str, Any]] = []
    reader = threading.Thread(
        target=_read_events, args=(f"{live_server}/api/stream", 1, found)
    )
    reader.start()
    _wait_until_subscribed(live_server, reader)
    run = httpx.post(f"{live_server}/api/runs", json={"name": "watched"}).json()
    reader.join(10)

    assert found == [("run", run)]


def test_run_stream_unknown_run_returns_404(live_server: str) -> None:
    response = httpx.get(f"{live_server}/api/runs/7/stream")
    assert response.status_code == 404
    assert response.json() == {"detail": "run 7 not found"}
