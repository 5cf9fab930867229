"""Views of long lines from point blocks: extremes kept, zoom, branches, backfill."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sqlalchemy import func, select, text

from panda.store import blocks, chunks, metrics, migrate, runs, timelines
from panda.store.db import Database
from panda.store.metrics import NewPoint
from panda.store.models import SeriesRow

MILLION = 1_000_000


def _new_run(database: Database) -> int:
    with database.session(write=True) as session:
        return runs.create_run(session, name="r", config={}).id


def _append(database: Database, run_id: int, points: list[NewPoint]) -> None:
    with database.session(write=True) as session:
        run = runs.get_run(session, run_id)
        metrics.append_points(session, run, points, None)


def _read(database: Database, run_id: int, **kwargs: int) -> metrics.SeriesData:
    with database.session() as session:
        run = runs.get_run(session, run_id)
        line = timelines.current_line(session, run)
        return metrics.read_series(session, line, "loss", **kwargs)


def _bulk_store(database: Database, run_id: int, values: np.ndarray) -> None:
    """Store ``values`` at steps 0.. as ingest would, in one batch of arrays.

    Step 0 goes through ingest, which creates the series; the rest goes to the
    chunk store and the blocks in one call each, skipping the per-batch work
    of the HTTP path.
    """
    _append(database, run_id, [NewPoint("loss", 0, float(values[0]), 0.0)])
    steps = np.arange(1, len(values), dtype=np.int64)
    points = chunks.Points(steps, values[1:].astype(np.float64), steps * 1.0)
    with database.session(write=True) as session:
        series_id = session.scalar(select(SeriesRow.id).where(SeriesRow.key == "loss"))
        assert series_id is not None
        stored = chunks.store(session, series_id, points)
        blocks.add_points(session, series_id, points.steps, points.values, points.times)
        session.commit()
    assert len(stored) == len(points)


def _blocks_table(database: Database) -> list[tuple[object, ...]]:
    with database.engine.connect() as connection:
        query = text("SELECT * FROM point_blocks ORDER BY series_id, level, block")
        return [tuple(row) for row in connection.execute(query)]


def test_read_series_million_points_view_keeps_spike_and_minimum(
    database: Database,
) -> None:
    run_id = _new_run(database)
    values = 1.0 + 0.01 * np.sin(np.arange(MILLION) / 50.0)
    values[654_321] = 1e6
    values[123_456] = -1e3
    values[900_000] = math.nan
    _bulk_store(database, run_id, values)

    view = _read(database, run_id, max_points=2000)

    assert view.total == MILLION
    assert view.downsampled
    assert len(view.steps) <= 2000
    assert view.steps == sorted(view.steps)
    assert view.values[view.steps.index(654_321)] == 1e6
    assert view.values[view.steps.index(123_456)] == -1e3
    assert math.isnan(view.values[view.steps.index(900_000)])


def test_read_series_zoomed_range_returns_raw_points(database: Database) -> None:
    run_id = _new_run(database)
    values = np.linspace(0.0, 1.0, 200_000)
    values[150_000] = 7.0
    _bulk_store(database, run_id, values)

    zoomed = _read(
        database, run_id, max_points=2000, min_step=149_500, max_step=150_499
    )
    wider = _read(database, run_id, max_points=2000, min_step=100_000, max_step=199_999)

    assert not zoomed.downsampled
    assert zoomed.steps == list(range(149_500, 150_500))
    assert zoomed.values[500] == 7.0
    assert wider.downsampled
    assert 150_000 in wider.steps
    assert min(wider.steps) >= 100_000
    assert max(wider.steps) <= 199_999


def test_read_series_view_follows_current_line_across_branches(
    database: Database,
) -> None:
    run_id = _new_run(database)
    parent = [NewPoint("loss", s, 1.0, 1.0) for s in range(10_000)]
    parent[2_000] = NewPoint("loss", 2_000, 50.0, 1.0)
    parent[8_000] = NewPoint("loss", 8_000, 99.0, 1.0)  # abandoned tail
    _append(database, run_id, parent)
    with database.session(write=True) as session:
        run = runs.get_run(session, run_id)
        assert run.current_branch_id is not None
        timelines.start_branch(
            session,
            run,
            parent_id=run.current_branch_id,
            start_step=5_000,
            reason="resume",
            checkpoint_id=None,
        )
        session.commit()
    child = [NewPoint("loss", s, 2.0, 2.0) for s in range(5_000, 12_000)]
    child[4_000] = NewPoint("loss", 9_000, -3.0, 2.0)
    _append(database, run_id, child)

    view = _read(database, run_id, max_points=100)

    assert view.total == 12_000
    assert 2_000 in view.steps
    assert 8_000 not in view.steps
    assert view.values[view.steps.index(9_000)] == -3.0
    assert len(set(view.branches)) == 2


def test_point_blocks_from_shuffled_resent_batches_match_backfill(
    database: Database,
) -> None:
    run_id = _new_run(database)
    chance = random.Random(7)
    values = [chance.choice([math.nan, math.inf, -math.inf, 0.5]) if s % 97 == 0
              else round(chance.gauss(0, 1), 1) for s in range(5_000)]  # fmt: skip
    steps = list(range(5_000))
    chance.shuffle(steps)
    batches = [steps[start : start + 700] for start in range(0, 5_000, 700)]
    for batch in [*batches, batches[2], batches[0][:50]]:
        _append(database, run_id, [NewPoint("loss", s, values[s], s) for s in batch])
    from_ingest = _blocks_table(database)

    migrate.downgrade(database.engine, "0001")
    migrate.upgrade(database.engine)

    assert _blocks_table(database) == from_ingest
    assert sum(row[3] for row in from_ingest if row[1] == 0) == 5_000


def test_view_of_far_apart_steps_reads_points_and_dense_one_reads_blocks(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steps that count samples lie 65,536 apart: every block would hold one point.
    count, spacing = 20_000, 65_536
    steps = np.arange(count, dtype=np.int64) * spacing
    values = np.cos(np.arange(count) / 30.0)
    values[12_345], values[777] = 50.0, -50.0
    dense, sparse = _new_run(database), _new_run(database)
    _bulk_store(database, dense, values)
    _append(database, sparse, [NewPoint("loss", 0, float(values[0]), 0.0)])
    with database.session(write=True) as session:
        # The sparse run's series is the newer of the two.
        series_id = session.scalar(select(func.max(SeriesRow.id)))
        assert series_id is not None
        points = chunks.Points(steps[1:], values[1:], steps[1:] * 1.0)
        chunks.store(session, series_id, points)
        blocks.add_points(session, series_id, points.steps, points.values, points.times)
        session.commit()

    levels: list[int] = []
    read_cover = blocks.read_cover

    def recording(*args: int, **kwargs: int) -> blocks.Blocks:
        levels.append(args[-1])
        return read_cover(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(blocks, "read_cover", recording)
    far = _read(database, sparse, max_points=200)
    near = _read(database, dense, max_points=200)

    assert levels == [blocks.RAW, 0]
    for view, step_of in ((far, spacing), (near, 1)):
        assert view.downsampled
        assert view.total == count
        assert len(view.steps) <= 200
        assert view.steps == sorted(view.steps)
        assert view.values[view.steps.index(12_345 * step_of)] == 50.0
        assert view.values[view.steps.index(777 * step_of)] == -50.0
        shown = zip(view.steps, view.values, strict=True)
        assert all(value == values[step // step_of] for step, value in shown)
