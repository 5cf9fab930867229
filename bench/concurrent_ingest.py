"""Server ingest from several runs at once, each in its own training process.

One ``panda serve`` subprocess. For each concurrency level N, N worker
processes each start a run, wait for a common start signal, log their share of
the same total of points (three metrics a step) as fast as they can, and call
``run.finish()``. The clock runs from the start signal until the last worker's
``finish()`` returned; every run's rows are then counted in the database.

The baseline is one process logging the whole total, in the same invocation.

    .venv-bench/bin/python bench/concurrent_ingest.py [--quick] [--runs 1 2 4]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from typing import Any

import harness

KEYS = ("train/loss", "train/acc", "lr")


def worker(url: str, steps: int, spool: str) -> None:
    """Log ``steps`` steps into a new run once stdin says go; print the result."""
    import panda

    run = panda.init("concurrent", server=url, spool_dir=spool)
    run.flush()
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for step in range(steps):
        loss = 2.0 / (1.0 + 0.001 * step) + 0.05 * math.sin(step)
        run.log({KEYS[0]: loss, KEYS[1]: 1.0 - loss / 3.0, KEYS[2]: 0.1}, step=step)
    run.finish(timeout_s=300)
    elapsed = time.perf_counter() - started
    print(json.dumps({"run": run.id, "seconds": elapsed}), flush=True)


def ingest(server: harness.Server, runs: int, total_steps: int) -> dict[str, Any]:
    """Run ``runs`` workers sharing ``total_steps``; return the timings."""
    steps = total_steps // runs
    command = [sys.executable, __file__, "--worker", server.url, str(steps)]
    workers = [
        subprocess.Popen(
            [*command, str(server.home / f"spool-{runs}-{index}")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(runs)
    ]
    for process in workers:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker failed to start its run")
    started = time.perf_counter()
    for process in workers:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in workers:
        out, _ = process.communicate(timeout=600)
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    stored = sum(harness.count_panda_points(server.home, r["run"]) for r in results)
    return {
        "wall": wall,
        "points": 3 * steps * runs,
        "stored": stored,
        "slowest": max(r["seconds"] for r in results),
        "fastest": min(r["seconds"] for r in results),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--runs", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=None, help="total steps (x3)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    total_steps = args.steps or (4_000 if args.quick else 30_000)
    levels = sorted({1, *args.runs})
    if args.quick:
        levels = [level for level in levels if level <= 4]

    rows = []
    with harness.panda_server() as server:
        results: dict[int, list[dict[str, Any]]] = {level: [] for level in levels}
        for _ in range(args.repeats):
            for level in levels:
                results[level].append(ingest(server, level, total_steps))
        peak_rss = server.peak_rss_mib()
    base_rate = None
    for level in levels:
        picked = sorted(results[level], key=lambda r: r["wall"])[
            len(results[level]) // 2
        ]
        rate = picked["points"] / picked["wall"]
        base_rate = base_rate or rate
        ok = "all" if picked["stored"] == picked["points"] else f"{picked['stored']:,}"
        rows.append(
            [
                f"{level} run{'s' if level > 1 else ''}"
                + (" (baseline)" if level == 1 else ""),
                picked["points"],
                picked["wall"],
                rate,
                rate / base_rate,
                f"{picked['fastest']:.2f}-{picked['slowest']:.2f}",
                ok,
            ]
        )
    harness.print_table(
        "Concurrent ingest into one panda server (SQLite)",
        [
            "runs at once",
            "points",
            "wall s",
            "points/s",
            "vs 1 run",
            "per-run s",
            "stored",
        ],
        rows,
    )
    print(f"\nserver peak RSS during the runs: {peak_rss:.0f} MiB")


if __name__ == "__main__":
    main()
