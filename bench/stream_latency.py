"""Latency from ``run.log`` to the ``points`` event on an open SSE stream.

A ``panda serve`` subprocess; a thread holds ``GET /api/runs/{id}/stream`` open
and notes when each step's ``points`` event arrives. The training side logs one
point every ``--interval-ms`` and remembers when it called ``run.log``.

Baseline in the same run: the same point POSTed straight to
``/api/runs/{id}/metrics`` (no client buffer), which is the server's own share
of the latency; the rest is the client's batching (its flush interval).

    .venv-bench/bin/python bench/stream_latency.py [--quick] [--points N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import harness
import httpx

KEY = "train/loss"


class StreamWatcher(threading.Thread):
    """Read a run's SSE stream and note when each step's point arrived."""

    def __init__(self, url: str, run_id: int) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/api/runs/{run_id}/stream"
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as http,
            http.stream("GET", self.url) as response,
        ):
            event = None
            self.ready.set()
            for line in response.iter_lines():
                now = time.time()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "points":
                    data = json.loads(line[6:])
                    if data["key"] == KEY:
                        for step in data["steps"]:
                            self.arrived.setdefault(step, now)
                if self._stopping.is_set():
                    return

    def stop(self) -> None:
        self._stopping.set()


def measure(
    server: harness.Server,
    run_id: int,
    send: Callable[[int], None],
    count: int,
    interval_s: float,
    first_step: int,
) -> list[float]:
    """Log ``count`` points through ``send``; return each one's latency in ms."""
    watcher = StreamWatcher(server.url, run_id)
    watcher.start()
    watcher.ready.wait(5)
    time.sleep(0.3)  # the server registers the subscription
    sent: dict[int, float] = {}
    for step in range(first_step, first_step + count):
        sent[step] = time.time()
        send(step)
        time.sleep(interval_s)
    deadline = time.time() + 5
    while len(watcher.arrived) < count and time.time() < deadline:
        time.sleep(0.05)
    # A last event ends the blocking read so the thread can see the stop flag.
    watcher.stop()
    send(first_step + count)
    watcher.join(2)
    return [
        (watcher.arrived[step] - sent[step]) * 1000
        for step in sent
        if step in watcher.arrived
    ]


def summary(name: str, latencies: list[float], count: int) -> list[Any]:
    return [
        name,
        f"{len(latencies)}/{count}",
        statistics.median(latencies),
        harness.percentile(latencies, 0.95),
        max(latencies),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    count = args.points or (60 if args.quick else 300)
    interval_s = args.interval_ms / 1000

    import panda

    rows = []
    with harness.panda_server() as server:
        run = panda.init("stream", server=server.url, spool_dir=server.home / "spool")
        run.flush()
        with httpx.Client(base_url=server.url) as http:

            def post(step: int) -> None:
                point = {"key": KEY, "step": step, "value": 1.0, "time": time.time()}
                http.post(f"/api/runs/{run.id}/metrics", json={"points": [point]})

            direct = measure(server, run.id, post, count, interval_s, 0)
        rows.append(summary("direct POST /metrics (baseline)", direct, count))

        def log(step: int) -> None:
            run.log({KEY: 1.0}, step=step)

        logged = measure(server, run.id, log, count, interval_s, 10 * count)
        rows.append(summary("panda run.log (client batching)", logged, count))
        run.finish()

    harness.print_table(
        f"run.log to SSE 'points' event, one point every {args.interval_ms:g} ms",
        ["path", "arrived", "p50 ms", "p95 ms", "max ms"],
        rows,
    )
    p95 = rows[1][3]
    verdict = "met" if p95 <= 250 else "MISSED"
    print(f"\ntarget p95 <= 250 ms: {p95:.0f} ms -> {verdict}")


if __name__ == "__main__":
    main()
