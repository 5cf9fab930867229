"""Metric points: fast idempotent ingest, and reading a line back, downsampled.

A point is keyed by (series, step), a series being one metric key on one
branch; the first write of a point wins and a resent one is ignored. NaN is
stored as NULL; infinities are stored as they are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from panda.store.db import executemany_raw, fetch_raw, insert_ignoring_duplicates
from panda.store.models import Base, Branch, PointRow, Run, SeriesRow, utcnow
from panda.store.runs import BranchNotFound, touch_run
from panda.store.timelines import Segment

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class NewPoint(NamedTuple):
    """A point as it arrives; ``time`` None means the server's clock."""

    key: str
    step: int
    value: float
    time: float | None


@dataclass
class Ingest:
    """What an ingest stored: the new points of each key, in arrival order."""

    branch_id: int
    received: int
    stored: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    revived: bool = False

    @property
    def stored_count(self) -> int:
        """Return how many points were new."""
        return sum(len(points) for points in self.stored.values())


@dataclass
class SeriesData:
    """A metric along a line, as parallel columns; NaN values are float NaN."""

    steps: list[int]
    values: list[float]
    times: list[float]
    total: int
    downsampled: bool


def json_value(value: float) -> float | str:
    """Return ``value`` fit for a JSON column: non-finite values become strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def resolve_branch(session: Session, run: Run, branch_id: int | None) -> int:
    """Return ``branch_id``, checked to be the run's, or the run's current branch.

    Raises:
        BranchNotFound: the branch does not belong to the run.
    """
    if branch_id is None:
        if run.current_branch_id is None:
            raise BranchNotFound(f"run {run.id} has no branch")
        return run.current_branch_id
    branch = session.get(Branch, branch_id)
    if branch is None or branch.run_id != run.id:
        raise BranchNotFound(f"branch {branch_id} of run {run.id} not found")
    return branch.id


def append_points(
    session: Session, run: Run, points: Sequence[NewPoint], branch_id: int | None
) -> Ingest:
    """Store a batch of points on a branch of ``run`` and commit.

    Points already stored keep their first value. The run's heartbeat is
    refreshed, and ``last_step`` and ``last_values`` follow points on its
    current branch.
    """
    target = resolve_branch(session, run, branch_id)
    ingest = Ingest(branch_id=target, received=len(points))
    ingest.revived = touch_run(run)
    if not points:
        session.commit()
        return ingest

    series_ids = _series_ids(session, target, {point.key for point in points})
    now = time.time()
    existing = _existing_steps(session, series_ids.values(), points)
    rows: list[dict[str, Any]] = []
    for point in points:
        series_id = series_ids[point.key]
        point_time = now if point.time is None else point.time
        value = None if math.isnan(point.value) else point.value
        rows.append(
            {
                "series_id": series_id,
                "step": point.step,
                "value": value,
                "time": point_time,
            }
        )
        if (series_id, point.step) not in existing:
            existing.add((series_id, point.step))
            ingest.stored.setdefault(point.key, []).append(
                (point.step, point.value, point_time)
            )

    # One INSERT .. ON CONFLICT DO NOTHING, sent as executemany: the database,
    # not the check above, guarantees that the first write of a point wins.
    statement = insert_ignoring_duplicates(
        session, Base.metadata.tables["points"], ["series_id", "step"]
    )
    executemany_raw(session, statement, rows)

    if target == run.current_branch_id:
        _update_last_values(run, ingest.stored)
    run.updated_at = utcnow()
    session.commit()
    return ingest


def _existing_steps(
    session: Session, series_ids: Iterable[int], points: Sequence[NewPoint]
) -> set[tuple[int, int]]:
    """Return the (series, step) pairs already stored within the batch's step span.

    A fresh batch lies past every stored step, so this range seek finds nothing
    and costs little; a resent batch finds its own points.
    """
    low = min(point.step for point in points)
    high = max(point.step for point in points)
    query = select(PointRow.series_id, PointRow.step).where(
        PointRow.series_id.in_(list(series_ids)),
        PointRow.step >= low,
        PointRow.step <= high,
    )
    return set(session.execute(query).all())


def _series_ids(session: Session, branch_id: int, keys: set[str]) -> dict[str, int]:
    """Get or create the series of each key on the branch."""
    query = select(SeriesRow.key, SeriesRow.id).where(
        SeriesRow.branch_id == branch_id, SeriesRow.key.in_(keys)
    )
    found = dict(session.execute(query).all())
    missing = keys - found.keys()
    if missing:
        statement = insert_ignoring_duplicates(
            session, Base.metadata.tables["series"], ["branch_id", "key"]
        )
        session.execute(
            statement, [{"branch_id": branch_id, "key": k} for k in missing]
        )
        query = select(SeriesRow.key, SeriesRow.id).where(
            SeriesRow.branch_id == branch_id, SeriesRow.key.in_(missing)
        )
        found.update(session.execute(query).all())
    return found


def _update_last_values(
    run: Run, stored: dict[str, list[tuple[int, float, float]]]
) -> None:
    latest = dict(run.last_values)
    last_step = run.last_step
    for key, points in stored.items():
        step, value, _ = max(points, key=lambda point: point[0])
        if key not in latest or step >= latest[key][0]:
            latest[key] = [step, json_value(value)]
        last_step = step if last_step is None else max(last_step, step)
    # A new dict, so the JSON column sees the change.
    run.last_values = latest
    run.last_step = last_step


def trim_last_values(run: Run, before_step: int) -> None:
    """Forget last values at ``before_step`` or later: the line now leaves there."""
    kept = {
        key: entry for key, entry in run.last_values.items() if entry[0] < before_step
    }
    run.last_values = kept
    run.last_step = max((entry[0] for entry in kept.values()), default=None)


def list_keys(session: Session, segments: Iterable[Segment], run: Run) -> list[str]:
    """Return the metric keys logged on the run's branches or its current line."""
    branch_ids = {segment.branch_id for segment in segments}
    branch_ids.update(session.scalars(select(Branch.id).where(Branch.run_id == run.id)))
    query = (
        select(SeriesRow.key)
        .where(SeriesRow.branch_id.in_(branch_ids))
        .distinct()
        .order_by(SeriesRow.key)
    )
    return list(session.scalars(query))


def read_series(
    session: Session,
    segments: Sequence[Segment],
    key: str,
    *,
    max_points: int | None = None,
) -> SeriesData:
    """Read metric ``key`` along ``segments`` (newest first), in step order.

    Args:
        max_points: downsample to at most this many points when the line holds
            more (see :func:`downsample`).
    """
    branch_ids = [segment.branch_id for segment in segments]
    query = select(SeriesRow.branch_id, SeriesRow.id).where(
        SeriesRow.key == key, SeriesRow.branch_id.in_(branch_ids)
    )
    series_of_branch = dict(session.execute(query).all())

    columns: list[tuple[Any, ...]] = []
    for segment in reversed(segments):
        series_id = series_of_branch.get(segment.branch_id)
        if series_id is not None:
            columns.extend(_read_segment(session, series_id, segment))

    steps = np.fromiter((row[0] for row in columns), dtype=np.int64, count=len(columns))
    values = np.array([row[1] for row in columns], dtype=np.float64)
    times = np.fromiter(
        (row[2] for row in columns), dtype=np.float64, count=len(columns)
    )
    total = len(columns)
    if max_points is not None and total > max_points:
        picked = downsample(steps, values, max_points)
        steps, values, times = steps[picked], values[picked], times[picked]
    return SeriesData(
        steps=steps.tolist(),
        values=values.tolist(),
        times=times.tolist(),
        total=total,
        downsampled=len(steps) < total,
    )


def _read_segment(
    session: Session, series_id: int, segment: Segment
) -> list[tuple[Any, ...]]:
    query = (
        select(PointRow.step, PointRow.value, PointRow.time)
        .where(PointRow.series_id == series_id, PointRow.step >= segment.start)
        .order_by(PointRow.step)
    )
    if segment.stop is not None:
        query = query.where(PointRow.step < segment.stop)
    return fetch_raw(session, query)


def downsample(steps: IntArray, values: FloatArray, max_points: int) -> IntArray:
    """Pick at most ``max_points`` indices that keep the shape of a curve.

    The step range is cut into ``max_points // 2`` buckets of equal width; each
    bucket keeps its lowest and its highest value, so spikes and the minimum
    survive. A NaN counts as the highest value of its bucket: for a loss it is
    the worst spike there is.

    Args:
        steps: increasing steps.
        values: the value at each step, NaN allowed.
    """
    count = len(steps)
    buckets = max(1, max_points // 2)
    if count <= max_points:
        return np.arange(count, dtype=np.int64)

    # Float arithmetic: step spans up to 2**63 would overflow int64 products.
    first, last = float(steps[0]), float(steps[-1])
    width = (last - first + 1.0) / buckets
    bucket = np.clip(((steps - steps[0]) / width).astype(np.int64), 0, buckets - 1)

    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    sizes = np.diff(np.r_[starts, count])
    low_source = np.where(np.isnan(values), np.inf, values)
    high_source = np.where(np.isnan(values), np.inf, values)
    lows = _first_match(low_source, np.minimum.reduceat(low_source, starts), sizes)
    highs = _first_match(high_source, np.maximum.reduceat(high_source, starts), sizes)

    # A NaN, if the bucket has one, replaces the bucket's highest value.
    is_nan = np.isnan(values)
    nan_first = _first_match(is_nan.astype(np.float64), np.ones(len(starts)), sizes)
    has_nan = np.add.reduceat(is_nan.astype(np.int64), starts) > 0
    highs = np.where(has_nan, nan_first, highs)
    return np.unique(np.concatenate([lows, highs]))


def _first_match(source: FloatArray, targets: FloatArray, sizes: IntArray) -> IntArray:
    """Return, per bucket, the first index whose value equals the bucket's target."""
    fallback = np.cumsum(np.r_[0, sizes[:-1]]).astype(np.int64)
    matches = np.flatnonzero(source == np.repeat(targets, sizes))
    if len(matches) == 0:
        return fallback
    bucket_of_match = np.repeat(np.arange(len(sizes)), sizes)[matches]
    keep = np.r_[True, bucket_of_match[1:] != bucket_of_match[:-1]]
    found = matches[keep]
    if len(found) == len(sizes):
        return found
    # A bucket with no match (never so for min and max) falls back to its start.
    fallback[bucket_of_match[keep]] = found
    return fallback
