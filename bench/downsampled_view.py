"""Downsampled view of a long metric: the chart's read path, over HTTP and direct.

Fills one series with 1,000,000 points through the store (``append_points``),
with one spike (the largest value), one dip (the minimum) and one NaN hidden at
random steps, then times:

- ``GET /api/runs/{id}/metrics?key=..&max_points=2000`` on a ``panda serve``
  subprocess, and the same read of every point (``all=true``);
- ``store.metrics.read_series`` called directly, with and without downsampling
  (every point read from the store is the baseline);
- two ways the read could go, for comparison: decoding every stored chunk
  of the series and taking each bucket's min and max in numpy (what a store
  without point blocks would do), and the same numpy bucket min/max on arrays
  already in memory.

Each figure is the median of several reads after one warm-up read. The
downsampled replies are checked to hold the spike, the dip and the NaN.

    .venv-bench/bin/python bench/downsampled_view.py [--quick] [--points N]
        [--spacing STEPS]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import httpx
import numpy as np

KEY = "train/loss"
MAX_POINTS = 2000
SPIKE, DIP = 1.0e4, -1.0e4


def fill(home: Path, total: int, seed: int, spacing: int) -> tuple[int, dict[str, int]]:
    """Create a run holding ``total`` points of KEY, ``spacing`` steps apart;
    return its id and the steps of the marks."""
    from panda.store import metrics, migrate, runs
    from panda.store.db import Database
    from panda.store.metrics import NewPoint

    rng = random.Random(seed)
    marks = {
        "spike": rng.randrange(total) * spacing,
        "dip": rng.randrange(total) * spacing,
        "nan": rng.randrange(total) * spacing,
    }
    database = Database.from_url(f"sqlite:///{home / 'panda.db'}")
    migrate.upgrade(database.engine)
    with database.session(write=True) as session:
        run_id = runs.create_run(session, name="long", config={}).id

    chunk = 100_000
    started = time.time()
    for low in range(0, total, chunk):
        points = []
        for index in range(low, min(total, low + chunk)):
            step = index * spacing
            value = 1.0 / (1.0 + 1e-4 * index) + 0.01 * math.sin(index * 0.37)
            if step == marks["spike"]:
                value = SPIKE
            elif step == marks["dip"]:
                value = DIP
            elif step == marks["nan"]:
                value = math.nan
            points.append(NewPoint(KEY, step, value, started + index * 1e-3))
        with database.session(write=True) as session:
            run = runs.get_run(session, run_id)
            metrics.append_points(session, run, points, None)
    database.dispose()
    return run_id, marks


def timed(repeats: int, read: Callable[[], Any]) -> tuple[float, Any]:
    """Return the median milliseconds of ``repeats`` reads (after a warm-up)."""
    result = read()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = read()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def check(steps: list[int], values: list[Any], marks: dict[str, int]) -> str:
    """Tell which of the spike, the dip and the NaN the reply kept."""
    by_step = dict(zip(steps, values, strict=True))
    found = {
        "spike": by_step.get(marks["spike"]) == SPIKE,
        "dip": by_step.get(marks["dip"]) == DIP,
        "nan": str(by_step.get(marks["nan"])) in ("nan", "NaN"),
    }
    if max(v for v in values if isinstance(v, float) and v == v) != SPIKE:
        found["spike"] = False
    missing = [name for name, ok in found.items() if not ok]
    kept = f"{len(steps)} pts"
    return kept + ("; spike, min, NaN kept" if not missing else f"; LOST {missing}")


def chunk_buckets(database: Any, run_id: int, buckets: int) -> np.ndarray:
    """Every point of the series from its chunks, then numpy's bucket min/max."""
    from sqlalchemy import select

    from panda.store import chunks
    from panda.store.models import Branch, SeriesRow

    with database.session() as session:
        series_id = session.scalar(
            select(SeriesRow.id)
            .join(Branch, Branch.id == SeriesRow.branch_id)
            .where(Branch.run_id == run_id, SeriesRow.key == KEY)
        )
        points = chunks.read(session, series_id, 0, 2**63 - 1)
    return bucket_min_max(points.values, buckets)


def bucket_min_max(values: np.ndarray, buckets: int) -> np.ndarray:
    """Indices of each bucket's min and max (NaN as max) on in-memory arrays."""
    edges = np.linspace(0, len(values), buckets + 1).astype(np.int64)[:-1]
    high_source = np.where(np.isnan(values), np.inf, values)
    low_source = np.where(np.isnan(values), np.inf, values)
    lows = np.minimum.reduceat(low_source, edges)
    highs = np.maximum.reduceat(high_source, edges)
    sizes = np.diff(np.r_[edges, len(values)])
    low_hit = np.flatnonzero(low_source == np.repeat(lows, sizes))
    high_hit = np.flatnonzero(high_source == np.repeat(highs, sizes))
    return np.unique(np.r_[low_hit, high_hit])[: 2 * buckets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 points")
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--spacing",
        type=int,
        default=1,
        help="steps between two points, as when a step counts samples",
    )
    args = parser.parse_args()
    total = args.points or (100_000 if args.quick else 1_000_000)
    repeats = 3 if args.quick else args.repeats

    from panda.store import metrics, runs, timelines
    from panda.store.db import Database

    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory("-panda") as directory:
        home = Path(directory)
        fill_started = time.perf_counter()
        run_id, marks = fill(home, total, seed=7, spacing=args.spacing)
        fill_s = time.perf_counter() - fill_started
        print(f"filled {total:,} points through the store in {fill_s:.1f} s")

        database = Database.from_url(f"sqlite:///{home / 'panda.db'}")

        def read_store(max_points: int | None) -> Any:
            with database.session() as session:
                run = runs.get_run(session, run_id)
                line = timelines.current_line(session, run)
                return metrics.read_series(session, line, KEY, max_points=max_points)

        full_ms, data = timed(max(1, repeats // 2), lambda: read_store(None))
        rows.append(
            [
                "store read_series, all points (baseline)",
                full_ms,
                1.0,
                f"{len(data.steps)} pts",
            ]
        )
        ms, data = timed(repeats, lambda: read_store(MAX_POINTS))
        rows.append(
            [
                f"store read_series, max_points={MAX_POINTS}",
                ms,
                ms / full_ms,
                check(data.steps, data.values, marks),
            ]
        )

        with (
            harness.panda_server(home) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            path = f"/api/runs/{run_id}/metrics"
            ms_all, reply = timed(
                max(1, repeats // 2),
                lambda: http.get(path, params={"key": KEY, "all": "true"}),
            )
            rows.append(
                [
                    "GET metrics, all points",
                    ms_all,
                    ms_all / full_ms,
                    f"{len(reply.json()['steps'])} pts, "
                    f"{len(reply.content) / 2**20:.1f} MiB",
                ]
            )
            params = {"key": KEY, "max_points": MAX_POINTS}
            ms_http, reply = timed(repeats, lambda: http.get(path, params=params))
            body = reply.json()
            rows.append(
                [
                    f"GET metrics, max_points={MAX_POINTS}",
                    ms_http,
                    ms_http / full_ms,
                    check(body["steps"], body["values"], marks),
                ]
            )

        full = read_store(None)
        steps = np.asarray(full.steps, dtype=np.int64)
        values = np.asarray(full.values, dtype=np.float64)
        ms, picked = timed(
            repeats, lambda: chunk_buckets(database, run_id, MAX_POINTS // 2)
        )
        rows.append(
            [
                "alt: every chunk decoded, numpy min/max",
                ms,
                ms / full_ms,
                check(steps[picked].tolist(), values[picked].tolist(), marks),
            ]
        )
        ms, picked = timed(repeats, lambda: bucket_min_max(values, MAX_POINTS // 2))
        rows.append(
            [
                "alt: numpy min/max on in-memory arrays",
                ms,
                ms / full_ms,
                check(steps[picked].tolist(), values[picked].tolist(), marks),
            ]
        )
        database.dispose()

    harness.print_table(
        f"Downsampled view of a {total:,}-point metric"
        + (f", points {args.spacing:,} steps apart" if args.spacing > 1 else ""),
        ["read", "median ms", "vs all points", "check"],
        rows,
    )
    http_ms = rows[3][1]
    verdict = "met" if http_ms <= 20 else "MISSED"
    print(
        f"\ntarget GET max_points={MAX_POINTS} <= 20 ms: {http_ms:.0f} ms -> {verdict}"
    )


if __name__ == "__main__":
    main()
