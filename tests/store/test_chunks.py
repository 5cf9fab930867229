"""Point chunks: first write wins in any order, chunks stay packed and disjoint."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from sqlalchemy import text

from panda.store import chunks, migrate, runs
from panda.store.chunks import Points
from panda.store.db import Database
from panda.store.models import CHUNK_POINTS, SeriesRow


def _new_series(database: Database) -> int:
    with database.session(write=True) as session:
        run = runs.create_run(session, name="r", config={})
        series = SeriesRow(branch_id=run.current_branch_id, key="loss")
        session.add(series)
        session.commit()
        return series.id


def _store(
    database: Database, series_id: int, points: list[tuple[int, float]]
) -> list[int]:
    steps = [step for step, _ in points]
    values = [value for _, value in points]
    batch = Points.of(steps, values, [float(step) for step in steps])
    with database.session(write=True) as session:
        stored = chunks.store(session, series_id, batch)
        session.commit()
    return stored.tolist()


def _chunk_rows(database: Database, series_id: int) -> list[tuple[int, int, int]]:
    query = text(
        "SELECT first_step, last_step, count FROM point_chunks "
        "WHERE series_id = :series ORDER BY first_step"
    )
    with database.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query, {"series": series_id})]


def _read_all(database: Database, series_id: int) -> dict[int, float]:
    with database.session() as session:
        points = chunks.read(session, series_id, 0, 2**63 - 1)
    assert points.increasing
    return dict(zip(points.steps.tolist(), points.values.tolist(), strict=True))


def test_store_in_order_batches_fill_each_chunk(database: Database) -> None:
    series_id = _new_series(database)
    total = 5 * (3 * CHUNK_POINTS // 5 + 2)  # three full chunks and a part
    for start in range(0, total, 5):
        _store(database, series_id, [(s, 1.0) for s in range(start, start + 5)])

    rows = _chunk_rows(database, series_id)

    assert [count for _, _, count in rows[:-1]] == [CHUNK_POINTS] * (len(rows) - 1)
    assert len(rows) == 4
    assert sum(count for _, _, count in rows) == total
    assert list(_read_all(database, series_id)) == list(range(total))


def test_store_random_order_matches_first_write_wins(database: Database) -> None:
    series_id = _new_series(database)
    chance = random.Random(11)
    expected: dict[int, float] = {}
    for round_number in range(60):
        start = chance.randrange(0, 4 * CHUNK_POINTS)
        steps = [
            chance.randrange(start, start + 600)
            for _ in range(chance.randrange(1, 300))
        ]
        steps += [chance.randrange(0, 10**12)] if round_number % 7 == 0 else []
        batch = [(step, float(round_number)) for step in steps]

        stored = _store(database, series_id, batch)

        new_steps = []
        for index, (step, value) in enumerate(batch):
            if step not in expected:
                expected[step] = value
                new_steps.append(index)
        assert stored == new_steps

    assert _read_all(database, series_id) == expected
    rows = _chunk_rows(database, series_id)
    assert all(0 < count <= CHUNK_POINTS for _, _, count in rows)
    for (_, last, _), (next_first, _, _) in itertools.pairwise(rows):
        assert last < next_first
    assert sum(count for _, _, count in rows) == len(expected)


@pytest.mark.parametrize("order", ["descending", "shuffled"])
def test_store_one_point_at_a_time_out_of_order_keeps_chunks_half_full(
    database: Database, order: str
) -> None:
    total = 6 * CHUNK_POINTS
    steps = list(range(total))[::-1]
    if order == "shuffled":
        random.Random(5).shuffle(steps)
    series_id = _new_series(database)
    for step in steps:
        _store(database, series_id, [(step, float(step))])

    rows = _chunk_rows(database, series_id)

    assert all(count >= CHUNK_POINTS // 2 for _, _, count in rows[1:-1]), rows
    assert len(rows) <= 2 * total // CHUNK_POINTS + 1
    assert all(a[1] < b[0] for a, b in itertools.pairwise(rows))
    assert _read_all(database, series_id) == {s: float(s) for s in range(total)}


def test_store_resent_points_write_nothing(database: Database) -> None:
    series_id = _new_series(database)
    _store(database, series_id, [(s, 1.0) for s in range(1000)])
    before = _chunk_rows(database, series_id)

    assert _store(database, series_id, [(s, 2.0) for s in range(200, 900, 3)]) == []
    assert _chunk_rows(database, series_id) == before
    assert set(_read_all(database, series_id).values()) == {1.0}


def test_store_non_finite_values_round_trip(database: Database) -> None:
    series_id = _new_series(database)
    values = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.5e308]
    _store(database, series_id, list(enumerate(values)))

    read = list(_read_all(database, series_id).values())

    assert math.isnan(read[0])
    assert read[1:] == values[1:]
    assert math.copysign(1.0, read[3]) == -1.0


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 2**63 - 1, (10, 5_000)),
        (11, 19, None),  # in the gap between two chunks
        (11, 2_000, (2_000, 2_000)),
        (3_000, 4_999, (3_000, 4_990)),
        (5_001, 9_999, None),
        (0, 9, None),
    ],
)
def test_span_finds_first_and_last_step_in_range(
    database: Database, low: int, high: int, expected: tuple[int, int] | None
) -> None:
    series_id = _new_series(database)
    steps = [10, *range(2_000, 5_000, 10), 5_000]
    _store(database, series_id, [(s, 0.0) for s in steps])

    with database.session() as session:
        assert chunks.span(session, series_id, low, high) == expected


def test_read_range_edges_inside_chunks(database: Database) -> None:
    series_id = _new_series(database)
    _store(database, series_id, [(s, float(s)) for s in range(0, 5_000, 2)])

    with database.session() as session:
        points = chunks.read(session, series_id, 1_001, 3_003)

    assert points.steps.tolist() == list(range(1_002, 3_004, 2))
    assert points.values.tolist() == [float(s) for s in range(1_002, 3_004, 2)]


_ONE_SERIES = (
    "INSERT INTO runs (id, name, status, config, created_at, updated_at, "
    "last_values) VALUES (1, 'r', 'running', '{}', '2026-01-01', '2026-01-01', '{}')",
    "INSERT INTO branches (id, run_id, start_step, reason, created_at) "
    "VALUES (1, 1, 0, 'start', '2026-01-01')",
    "INSERT INTO series (id, branch_id, key) VALUES (1, 1, 'loss')",
)


def test_upgrade_packs_rows_of_points_and_downgrade_restores_them(db_url: str) -> None:
    database = Database.from_url(db_url)
    migrate.upgrade(database.engine, "0003")
    rows = [(1, s, None if s == 3 else (math.inf if s == 4 else s / 2), s + 0.5)
            for s in range(0, 1_500, 1)]  # fmt: skip
    with database.engine.begin() as connection:
        for statement in _ONE_SERIES:
            connection.execute(text(statement))
        connection.execute(
            text("INSERT INTO points VALUES (:a, :b, :c, :d)"),
            [dict(zip("abcd", row, strict=True)) for row in rows],
        )

    migrate.upgrade(database.engine)
    with database.session() as session:
        points = chunks.read(session, 1, 0, 2**63 - 1)
    assert points.steps.tolist() == list(range(1_500))
    assert np.isnan(points.values[3])
    assert points.values[4] == math.inf
    assert points.values[1_499] == 1_499 / 2
    assert points.times.tolist() == [s + 0.5 for s in range(1_500)]
    assert [count for _, _, count in _chunk_rows(database, 1)] == [512, 512, 476]

    migrate.downgrade(database.engine, "0003")
    with database.engine.connect() as connection:
        back = connection.execute(text("SELECT * FROM points ORDER BY step")).all()
    database.dispose()
    assert [tuple(row) for row in back] == rows
