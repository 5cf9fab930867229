"""Resident memory of a ``panda serve`` process while it ingests many points.

Starts ``python -m panda serve`` as a subprocess, then POSTs ``--points`` points
(three metrics a step, 20,000 points a request as parallel columns: the
client's batch size and form) to one run, reading the server's VmRSS and VmHWM
from /proc at the start and after each quarter. The bench side builds the JSON
bodies in a second thread so the server is never kept waiting. At the end it
reads one metric back downsampled (``max_points=2000``), the dashboard's first
request, and reads memory again.

The baseline is the idle server's RSS, measured in the same run.

    .venv-bench/bin/python bench/server_memory.py [--quick] [--points N]
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from typing import Any

import harness
import httpx
import pydantic_core

KEYS = ("train/loss", "train/acc", "lr")
BATCH_POINTS = 20_000


def bodies(total_points: int, out: queue.Queue[bytes | None]) -> None:
    """Put JSON request bodies of BATCH_POINTS points each on ``out``."""
    steps_per_batch = BATCH_POINTS // len(KEYS)
    total_steps = total_points // len(KEYS)
    now = time.time()
    for low in range(0, total_steps, steps_per_batch):
        steps = list(range(low, min(total_steps, low + steps_per_batch)))
        losses = [2.0 / (1.0 + 1e-5 * step) + (step % 97) * 1e-4 for step in steps]
        values = (losses, [1 - loss / 3 for loss in losses], [0.1] * len(steps))
        times = [now] * len(steps)
        columns = {
            key: {"steps": steps, "values": column, "times": times}
            for key, column in zip(KEYS, values, strict=True)
        }
        out.put(pydantic_core.to_json({"columns": columns}))
    out.put(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300,000 points")
    parser.add_argument("--points", type=int, default=None)
    args = parser.parse_args()
    total = args.points or (300_000 if args.quick else 10_000_000)

    rows: list[list[Any]] = []
    with (
        harness.panda_server() as server,
        httpx.Client(base_url=server.url, timeout=120) as http,
    ):
        time.sleep(1.0)
        idle = server.rss_mib()
        rows.append(["idle after start (baseline)", 0, idle, server.peak_rss_mib(), ""])
        run_id = http.post("/api/runs", json={"name": "memory"}).json()["id"]

        pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        threading.Thread(target=bodies, args=(total, pending), daemon=True).start()
        headers = {"content-type": "application/json"}
        path = f"/api/runs/{run_id}/metrics"
        sent = 0
        marks = [total * quarter // 4 for quarter in (1, 2, 3, 4)]
        started = time.perf_counter()
        while (body := pending.get()) is not None:
            reply = http.post(path, content=body, headers=headers)
            reply.raise_for_status()
            sent += reply.json()["received"]
            if marks and sent >= marks[0]:
                marks.pop(0)
                rate = sent / (time.perf_counter() - started)
                rows.append(
                    [
                        f"after ingesting {sent:,} points",
                        sent,
                        server.rss_mib(),
                        server.peak_rss_mib(),
                        f"{rate:,.0f} points/s so far",
                    ]
                )
        ingest_s = time.perf_counter() - started
        if marks:  # the total was not a multiple of three points a step
            rate = sent / ingest_s
            rows.append(
                [
                    f"after ingesting {sent:,} points",
                    sent,
                    server.rss_mib(),
                    server.peak_rss_mib(),
                    f"{rate:,.0f} points/s so far",
                ]
            )
        after_ingest = rows[-1][2]

        read_started = time.perf_counter()
        reply = http.get(path, params={"key": KEYS[0], "max_points": 2000})
        read_ms = (time.perf_counter() - read_started) * 1000
        series_points = reply.json()["total"]
        rows.append(
            [
                f"after GET max_points=2000 of {series_points:,} points",
                sent,
                server.rss_mib(),
                server.peak_rss_mib(),
                f"the GET took {read_ms:,.0f} ms",
            ]
        )

    harness.print_table(
        f"panda serve memory, {total:,} points into one run in {ingest_s:.0f} s",
        ["moment", "points", "RSS MiB", "peak RSS MiB", "note"],
        rows,
    )
    verdict = "met" if after_ingest <= 200 else "MISSED"
    print(
        f"\ntarget RSS <= 200 MiB after ingest: {after_ingest:.0f} MiB -> {verdict}"
        f" (peak {rows[-1][3]:.0f} MiB incl. the downsampled read)"
    )


if __name__ == "__main__":
    main()
