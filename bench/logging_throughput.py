"""End-to-end logging throughput: from the first log call to rows in the store.

Each contender logs the same points (three metrics per step) and the clock stops
when its own "done" call returns and the points are countable in its store:

- panda: ``run.log`` per step, stopped by ``run.finish()`` (a ``panda serve``
  subprocess on SQLite); the rows are then counted in the SQLite file.
- MLflow against a local ``mlflow server`` on SQLite: one ``log_metric`` call
  per point, async logging, and ``log_batch`` of 1000.
- TensorBoard ``SummaryWriter.add_scalar`` until ``close()``.
- Aim ``Run.track`` in a local repo until ``close()``.
- Baselines: raw ``sqlite3`` executemany (WAL, 1000-row transactions) and
  SQLAlchemy Core ``insert`` into a table shaped like panda's ``points``.

Ratios are against raw sqlite3 measured in the same invocation. Slow anchors
log fewer points (see the ``points`` column); the rate is what compares.

    .venv-bench/bin/python bench/logging_throughput.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness

KEYS = ("train/loss", "train/acc", "lr")


def make_points(steps: int) -> list[tuple[int, dict[str, float]]]:
    """Return ``steps`` rows of three metric values, the same for everyone."""
    rows = []
    for step in range(steps):
        loss = 2.0 / (1.0 + 0.001 * step) + 0.05 * math.sin(step)
        rows.append((step, {KEYS[0]: loss, KEYS[1]: 1.0 - loss / 3.0, KEYS[2]: 0.1}))
    return rows


# -- panda ---------------------------------------------------------------------


def bench_panda(server: harness.Server, data: list) -> tuple[float, int, float]:
    """Return (seconds to finish, points stored, seconds spent inside log())."""
    import panda

    run = panda.init("throughput", server=server.url, spool_dir=server.home / "spool")
    in_log_s = 0.0
    started = time.perf_counter()
    for step, values in data:
        before = time.perf_counter()
        run.log(values, step=step)
        in_log_s += time.perf_counter() - before
    run.finish(timeout_s=300)
    elapsed = time.perf_counter() - started
    return elapsed, harness.count_panda_points(server.home, run.id), in_log_s


# -- baselines -----------------------------------------------------------------

POINTS_DDL = (
    "CREATE TABLE points (series_id INTEGER NOT NULL, step INTEGER NOT NULL, "
    "value REAL, time REAL NOT NULL, PRIMARY KEY (series_id, step)) WITHOUT ROWID"
)


def bench_raw_sqlite(data: list) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as directory:
        connection = sqlite3.connect(Path(directory) / "raw.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(POINTS_DDL)
        series = {key: index for index, key in enumerate(KEYS, 1)}
        started = time.perf_counter()
        batch: list[tuple] = []
        for step, values in data:
            now = time.time()
            batch.extend((series[k], step, v, now) for k, v in values.items())
            if len(batch) >= 1000:
                _raw_insert(connection, batch)
                batch = []
        if batch:
            _raw_insert(connection, batch)
        elapsed = time.perf_counter() - started
        count = connection.execute("SELECT count(*) FROM points").fetchone()[0]
        connection.close()
    return elapsed, count


def _raw_insert(connection: sqlite3.Connection, batch: list[tuple]) -> None:
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO points VALUES (?, ?, ?, ?)", batch)
    connection.execute("COMMIT")


def bench_sqlalchemy_core(data: list) -> tuple[float, int]:
    from sqlalchemy import (
        Column,
        Float,
        Integer,
        MetaData,
        Table,
        create_engine,
        event,
        func,
        select,
    )

    metadata = MetaData()
    points = Table(
        "points",
        metadata,
        Column("series_id", Integer, primary_key=True),
        Column("step", Integer, primary_key=True),
        Column("value", Float),
        Column("time", Float, nullable=False),
        sqlite_with_rowid=False,
    )
    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(f"sqlite:///{directory}/core.db")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        metadata.create_all(engine)
        series = {key: index for index, key in enumerate(KEYS, 1)}
        statement = points.insert()
        started = time.perf_counter()
        batch: list[dict] = []
        for step, values in data:
            now = time.time()
            batch.extend(
                {"series_id": series[k], "step": step, "value": v, "time": now}
                for k, v in values.items()
            )
            if len(batch) >= 1000:
                with engine.begin() as connection:
                    connection.execute(statement, batch)
                batch = []
        if batch:
            with engine.begin() as connection:
                connection.execute(statement, batch)
        elapsed = time.perf_counter() - started
        with engine.connect() as connection:
            count = connection.scalar(select(func.count()).select_from(points))
        engine.dispose()
    return elapsed, int(count or 0)


# -- anchors -------------------------------------------------------------------


def _mlflow_count(server: harness.Server, run_id: str) -> int:
    with contextlib.closing(sqlite3.connect(server.home / "mlflow.db")) as db:
        query = "SELECT count(*) FROM metrics WHERE run_uuid = ?"
        return int(db.execute(query, (run_id,)).fetchone()[0])


def bench_mlflow_per_call(server: harness.Server, data: list) -> tuple[float, int]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name("bench") or None
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("bench")
    )
    run_id = client.create_run(experiment_id).info.run_id
    started = time.perf_counter()
    for step, values in data:
        for key, value in values.items():
            client.log_metric(run_id, key, value, step=step)
    client.set_terminated(run_id)
    elapsed = time.perf_counter() - started
    return elapsed, _mlflow_count(server, run_id)


def bench_mlflow_async(server: harness.Server, data: list) -> tuple[float, int]:
    import mlflow

    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("bench")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        started = time.perf_counter()
        for step, values in data:
            mlflow.log_metrics(values, step=step, synchronous=False)
        mlflow.flush_async_logging()
    elapsed = time.perf_counter() - started
    return elapsed, _mlflow_count(server, run_id)


def bench_mlflow_batch(server: harness.Server, data: list) -> tuple[float, int]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name("bench")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("bench")
    )
    run_id = client.create_run(experiment_id).info.run_id
    started = time.perf_counter()
    batch: list[Metric] = []
    for step, values in data:
        millis = int(time.time() * 1000)
        batch.extend(Metric(k, v, millis, step) for k, v in values.items())
        if len(batch) >= 999:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id)
    elapsed = time.perf_counter() - started
    return elapsed, _mlflow_count(server, run_id)


def bench_tensorboard(data: list) -> tuple[float, int]:
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        writer = SummaryWriter(directory)
        for step, values in data:
            for key, value in values.items():
                writer.add_scalar(key, value, step)
        writer.close()
        elapsed = time.perf_counter() - started
        events = EventAccumulator(directory, size_guidance={"scalars": 0})
        events.Reload()
        count = sum(len(events.Scalars(tag)) for tag in events.Tags()["scalars"])
    return elapsed, count


def bench_aim(data: list) -> tuple[float, int]:
    from aim import Run

    directory = str(harness.scratch_dir())
    started = time.perf_counter()
    run = Run(repo=directory, experiment="bench", system_tracking_interval=None)
    for step, values in data:
        for key, value in values.items():
            run.track(value, name=key, step=step)
    tracked_s = time.perf_counter() - started
    # Counted (untimed) through the run itself: a Repo opened on the folder
    # after close() lists no runs until Aim's indexer has merged them.
    count = sum(len(metric.values.values_list()) for metric in run.metrics())
    closing = time.perf_counter()
    run.close()
    return tracked_s + time.perf_counter() - closing, count


# -- main ----------------------------------------------------------------------


def measure(
    repeats: int, body: Callable[[], tuple[float, int]], expected: int
) -> tuple[float, str]:
    """Return the median seconds over ``repeats`` runs and a stored-rows note."""
    results = [body() for _ in range(repeats)]
    seconds = sorted(elapsed for elapsed, _ in results)[len(results) // 2]
    counts = {count for _, count in results}
    note = "all stored" if counts == {expected} else f"stored {sorted(counts)}"
    return seconds, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds in all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="steps (x3 points)")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="contenders to leave out (by name)"
    )
    args = parser.parse_args()
    harness.scratch_dir()  # before Aim is imported: see its docstring
    steps = args.steps or (10_000 if args.quick else 50_000)
    repeats = 1 if args.quick else args.repeats
    # Anchors that make one request or one record per point get fewer points,
    # sized so that each takes seconds, not minutes, on two busy cores.
    scale = 0.2 if args.quick else 1.0
    few = {
        "per_call": int(150 * scale),
        "async": int(1_500 * scale),
        "batch": int(30_000 * scale),
        "tensorboard": int(30_000 * scale),
        "aim": int(3_000 * scale),
    }

    data = make_points(steps)
    rows: list[list] = []
    raw_s, raw_note = measure(repeats, lambda: bench_raw_sqlite(data), 3 * steps)
    raw_rate = 3 * steps / raw_s

    def add(name: str, points: int, seconds: float, note: str, reps: int) -> None:
        rate = points / seconds
        rows.append([name, points, reps, seconds, rate, rate / raw_rate, note])

    add("raw sqlite3 executemany (baseline)", 3 * steps, raw_s, raw_note, repeats)
    core_s, note = measure(repeats, lambda: bench_sqlalchemy_core(data), 3 * steps)
    add("SQLAlchemy Core insert", 3 * steps, core_s, note, repeats)

    if "panda" not in args.skip:
        with harness.panda_server() as server:
            results = [bench_panda(server, data) for _ in range(repeats)]
        seconds = sorted(r[0] for r in results)[len(results) // 2]
        stored = {r[1] for r in results}
        note = "all stored" if stored == {3 * steps} else f"stored {sorted(stored)}"
        log_us = sorted(r[2] for r in results)[len(results) // 2] / steps * 1e6
        add("panda run.log -> finish()", 3 * steps, seconds, note, repeats)
        rows[-1][-1] += f"; log() {log_us:.1f} us/call (3 pts)"

    if "mlflow" not in args.skip and not harness.anchor_missing("mlflow"):
        with harness.mlflow_server() as server:
            part = data[: few["per_call"] // 3]
            secs, note = measure(
                1, lambda: bench_mlflow_per_call(server, part), 3 * len(part)
            )
            add("MLflow log_metric per point (server)", 3 * len(part), secs, note, 1)
            part = data[: few["async"] // 3]
            secs, note = measure(
                1, lambda: bench_mlflow_async(server, part), 3 * len(part)
            )
            add("MLflow async log_metrics (server)", 3 * len(part), secs, note, 1)
            part = data[: few["batch"] // 3]
            secs, note = measure(
                1, lambda: bench_mlflow_batch(server, part), 3 * len(part)
            )
            add("MLflow log_batch of 1000 (server)", 3 * len(part), secs, note, 1)
    elif "mlflow" not in args.skip:
        rows.append(
            [
                "MLflow",
                0,
                0,
                float("nan"),
                float("nan"),
                float("nan"),
                harness.anchor_missing("mlflow"),
            ]
        )

    if "tensorboard" not in args.skip and not harness.anchor_missing("tensorboard"):
        some = data[: few["tensorboard"] // 3]
        secs, note = measure(1, lambda: bench_tensorboard(some), 3 * len(some))
        add("TensorBoard add_scalar -> close()", 3 * len(some), secs, note, 1)
    elif "tensorboard" not in args.skip:
        rows.append(
            [
                "TensorBoard",
                0,
                0,
                float("nan"),
                float("nan"),
                float("nan"),
                harness.anchor_missing("tensorboard"),
            ]
        )

    if "aim" not in args.skip and not harness.anchor_missing("aim"):
        some = data[: few["aim"] // 3]
        secs, note = measure(1, lambda: bench_aim(some), 3 * len(some))
        add("Aim Run.track -> close()", 3 * len(some), secs, note, 1)
    elif "aim" not in args.skip:
        rows.append(
            [
                "Aim",
                0,
                0,
                float("nan"),
                float("nan"),
                float("nan"),
                harness.anchor_missing("aim"),
            ]
        )

    harness.print_table(
        "Logging throughput, log call to rows in the store",
        [
            "contender",
            "points",
            "repeats",
            "median s",
            "points/s",
            "vs raw sqlite",
            "note",
        ],
        rows,
    )
    panda_rows = [row for row in rows if row[0].startswith("panda")]
    if panda_rows:
        rate, ratio = panda_rows[0][4], panda_rows[0][5]
        verdict = "met" if rate >= 100_000 and ratio >= 0.4 else "MISSED"
        print(
            f"\ntarget panda >= 100,000 points/s and >= 40% of raw sqlite: "
            f"{rate:,.0f} points/s, {ratio:.0%} -> {verdict}"
        )


if __name__ == "__main__":
    main()
