"""Ingest and read-back of metric points, and downsampling."""

from __future__ import annotations

import math

import pytest

from panda.store import metrics, runs, timelines
from panda.store.db import Database
from panda.store.metrics import NewPoint


def _new_run(database: Database) -> int:
    with database.session(write=True) as session:
        return runs.create_run(session, name="r", config={}).id


def _append(database: Database, run_id: int, points: list[NewPoint]) -> int:
    with database.session(write=True) as session:
        run = runs.get_run(session, run_id)
        return metrics.append_points(session, run, points, None).stored_count


def _read(
    database: Database, run_id: int, key: str, **kwargs: int
) -> metrics.SeriesData:
    with database.session() as session:
        run = runs.get_run(session, run_id)
        line = timelines.current_line(session, run)
        return metrics.read_series(session, line, key, **kwargs)


def test_append_points_non_finite_values_round_trip(database: Database) -> None:
    run_id = _new_run(database)
    values = [math.nan, math.inf, -math.inf, 0.0, -1.5e308]
    _append(
        database, run_id, [NewPoint("loss", i, v, 1.0) for i, v in enumerate(values)]
    )

    read = _read(database, run_id, "loss")

    assert math.isnan(read.values[0])
    assert read.values[1:] == values[1:]


def test_append_points_resent_batch_stores_nothing_new(database: Database) -> None:
    run_id = _new_run(database)
    batch = [NewPoint("loss", i, float(i), 1.0) for i in range(10)]
    assert _append(database, run_id, batch) == 10

    resent = [NewPoint("loss", i, 99.0, 2.0) for i in range(10)]
    assert _append(database, run_id, resent) == 0
    assert _read(database, run_id, "loss").values == [float(i) for i in range(10)]


def test_append_points_out_of_order_batches_read_in_step_order(
    database: Database,
) -> None:
    run_id = _new_run(database)
    _append(database, run_id, [NewPoint("loss", s, float(s), 1.0) for s in (5, 6, 7)])
    _append(database, run_id, [NewPoint("loss", s, float(s), 1.0) for s in (3, 1, 2)])

    assert _read(database, run_id, "loss").steps == [1, 2, 3, 5, 6, 7]
    with database.session() as session:
        run = runs.get_run(session, run_id)
        assert run.last_step == 7
        assert runs.last_values(run) == {"loss": 7.0}


def test_append_points_largest_step_round_trips(database: Database) -> None:
    run_id = _new_run(database)
    _append(database, run_id, [NewPoint("loss", 2**63 - 1, 1.0, 1.0)])

    assert _read(database, run_id, "loss").steps == [2**63 - 1]


@pytest.mark.parametrize(
    "key", ["train/loss", "val loss", "损失/λ", "k" * 200, "a/b c/d"]
)
def test_append_points_unusual_keys_round_trip(database: Database, key: str) -> None:
    run_id = _new_run(database)
    _append(database, run_id, [NewPoint(key, 0, 1.0, 1.0)])

    assert _read(database, run_id, key).values == [1.0]
    with database.session() as session:
        run = runs.get_run(session, run_id)
        assert metrics.list_keys(
            session, timelines.current_line(session, run), run
        ) == [key]


def test_read_series_downsampled_keeps_spike_and_minimum(database: Database) -> None:
    run_id = _new_run(database)
    steps = range(20_000)
    values = [1.0 + 0.001 * math.sin(step) for step in steps]
    values[12_345] = 1e6
    values[777] = -5.0
    values[15_000] = math.nan
    _append(database, run_id, [NewPoint("loss", s, values[s], 1.0) for s in steps])

    read = _read(database, run_id, "loss", max_points=200)

    assert read.downsampled
    assert read.total == 20_000
    assert len(read.steps) <= 200
    assert read.steps == sorted(read.steps)
    assert 12_345 in read.steps
    assert 1e6 in read.values
    assert 777 in read.steps
    assert -5.0 in read.values
    assert 15_000 in read.steps


def test_read_series_short_line_keeps_every_point(database: Database) -> None:
    run_id = _new_run(database)
    _append(database, run_id, [NewPoint("loss", s, 1.0, 1.0) for s in range(10)])

    read = _read(database, run_id, "loss", max_points=10)

    assert read.steps == list(range(10))
    assert not read.downsampled


def test_read_series_huge_step_span_stays_in_bounds(database: Database) -> None:
    run_id = _new_run(database)
    steps = [0, 1, 2**62, 2**63 - 2, 2**63 - 1]
    values = [3.0, 1.0, 2.0, 5.0, 4.0]
    points = [NewPoint("loss", s, v, 1.0) for s, v in zip(steps, values, strict=True)]
    _append(database, run_id, points)

    read = _read(database, run_id, "loss", max_points=4)

    assert len(read.steps) <= 4
    assert {1, 2**63 - 2} <= set(read.steps)
    assert read.total == 5
