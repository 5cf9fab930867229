"""Metric points: fast idempotent ingest, and reading a line back, whole or as a view.

A point is keyed by (series, step), a series being one metric key on one
branch; the first write of a point wins and a resent one is ignored. Points
are kept in chunks (:mod:`panda.store.chunks`), NaN and infinities as they are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from panda.store import blocks, chunks
from panda.store.chunks import Points
from panda.store.db import insert_ignoring_duplicates
from panda.store.models import (
    BLOCK_SIZES,
    Base,
    Branch,
    Run,
    SeriesRow,
    utcnow,
)
from panda.store.runs import BranchNotFound, touch_run
from panda.store.timelines import Segment

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_STEP_MAX = 2**63 - 1
# Below this many points to a block on average, a view reads the points instead:
# a block row costs the database about what decoding 16 packed points costs.
POINTS_PER_BLOCK_MIN = 16


class NewPoint(NamedTuple):
    """A point as it arrives; ``time`` None means the server's clock."""

    key: str
    step: int
    value: float
    time: float | None


class Columns(NamedTuple):
    """One metric's points as parallel columns; ``times`` None means server time."""

    steps: Sequence[int]
    values: Sequence[float]
    times: Sequence[float] | None


@dataclass
class Ingest:
    """What an ingest stored: the new points of each key, in arrival order."""

    branch_id: int
    received: int
    stored: dict[str, Columns] = field(default_factory=dict)
    """Per key, the points that were new; their ``times`` are never None."""
    revived: bool = False

    @property
    def stored_count(self) -> int:
        """Return how many points were new."""
        return sum(len(column.steps) for column in self.stored.values())


@dataclass
class SeriesData:
    """A metric along a line, as parallel columns; NaN values are float NaN."""

    steps: list[int]
    values: list[float]
    times: list[float]
    branches: list[int]
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
    now = time.time()
    grouped: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for point in points:
        column = grouped.get(point.key)
        if column is None:
            column = grouped[point.key] = ([], [], [])
        column[0].append(point.step)
        column[1].append(point.value)
        column[2].append(now if point.time is None else point.time)
    columns = {key: Columns(*column) for key, column in grouped.items()}
    return append_columns(session, run, columns, branch_id)


def append_columns(
    session: Session, run: Run, columns: dict[str, Columns], branch_id: int | None
) -> Ingest:
    """Store points given as parallel columns per key; see :func:`append_points`."""
    target = resolve_branch(session, run, branch_id)
    received = sum(len(column.steps) for column in columns.values())
    ingest = Ingest(branch_id=target, received=received)
    ingest.revived = touch_run(run)
    columns = {key: column for key, column in columns.items() if column.steps}
    if not columns:
        session.commit()
        return ingest

    series_ids = _series_ids(session, target, set(columns))
    now = time.time()
    last_points: dict[str, tuple[int, float]] = {}
    for key, column in columns.items():
        series_id = series_ids[key]
        steps, values = column.steps, column.values
        times = column.times if column.times is not None else [now] * len(steps)
        points = Points.of(steps, values, times)
        new = chunks.store(session, series_id, points)
        if len(new) == len(points):
            ingest.stored[key] = Columns(steps, values, times)
        elif len(new):
            points = points.take(new)
            ingest.stored[key] = Columns(
                points.steps.tolist(), points.values.tolist(), points.times.tolist()
            )
        else:
            continue
        blocks.add_points(session, series_id, points.steps, points.values, points.times)
        latest = int(np.argmax(points.steps))
        last_points[key] = (int(points.steps[latest]), float(points.values[latest]))

    if target == run.current_branch_id:
        _update_last_values(run, last_points)
    run.updated_at = utcnow()
    session.commit()
    return ingest


def _series_ids(session: Session, branch_id: int, keys: set[str]) -> dict[str, int]:
    """Get or create the series of each key on the branch."""
    # FOR UPDATE (a no-op on SQLite, whose writers take turns anyway) makes
    # PostgreSQL writers of one series take turns too, so that block refreshes
    # always see every point stored before them.
    query = (
        select(SeriesRow.key, SeriesRow.id)
        .where(SeriesRow.branch_id == branch_id, SeriesRow.key.in_(keys))
        .order_by(SeriesRow.id)
        .with_for_update()
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
        query = (
            select(SeriesRow.key, SeriesRow.id)
            .where(SeriesRow.branch_id == branch_id, SeriesRow.key.in_(missing))
            .order_by(SeriesRow.id)
            .with_for_update()
        )
        found.update(session.execute(query).all())
    return found


def _update_last_values(run: Run, last_points: dict[str, tuple[int, float]]) -> None:
    """Follow the stored points whose step is the last of their key."""
    latest = dict(run.last_values)
    last_step = run.last_step
    for key, (step, value) in last_points.items():
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
    min_step: int | None = None,
    max_step: int | None = None,
) -> SeriesData:
    """Read metric ``key`` along ``segments`` (newest first), in step order.

    Args:
        max_points: when the line holds more points in the step range, answer
            a view of at most this many (at least 2): the range is cut into
            ``max_points // 2`` buckets of equal width, and each keeps its
            lowest and highest point, so spikes and the minimum stay visible.
            A bucket with a NaN shows its first NaN in place of its highest
            point. The buckets come from point blocks (see
            :mod:`panda.store.blocks`): the cost follows ``max_points``, not
            the length of the line.
        min_step: only points at this step or later.
        max_step: only points at this step or earlier.
    """
    parts = _line_parts(session, segments, key, min_step, max_step)
    if not parts:
        return SeriesData([], [], [], [], total=0, downsampled=False)
    first, last = parts[0].first, parts[-1].last
    if max_points is None or last - first + 1 <= max_points:
        return _read_points(session, parts)

    buckets = max_points // 2
    level = _view_level(-(-(last - first + 1) // buckets))
    if level != blocks.RAW and _sparse(session, parts, BLOCK_SIZES[level]):
        level = blocks.RAW
    size = 1 if level == blocks.RAW else BLOCK_SIZES[level]
    origin = first // size * size
    # A multiple of the block size, so that no block straddles two buckets.
    width = min(-(-(last - origin + 1) // (buckets * size)) * size, _STEP_MAX)

    pieces = [
        blocks.read_cover(session, part.series_id, part.first, part.last, level)
        for part in parts
    ]
    line = blocks.Blocks.concat(pieces)
    total = int(line.count.sum())
    if total <= max_points:
        return _read_points(session, parts)
    sizes = [len(piece) for piece in pieces]
    branch_ids = np.repeat([part.branch_id for part in parts], sizes)
    group = np.minimum((line.first_step - origin) // width, buckets - 1)
    return _bucket_extremes(line, branch_ids, group, total)


@dataclass(frozen=True)
class _Part:
    """Where a series holds points of the line: steps ``[first, last]``."""

    branch_id: int
    series_id: int
    first: int
    last: int


def _line_parts(
    session: Session,
    segments: Sequence[Segment],
    key: str,
    min_step: int | None,
    max_step: int | None,
) -> list[_Part]:
    """Return the stored stretches of ``key`` on the line within the step range,
    oldest first, each narrowed to its first and last point.
    """
    branch_ids = [segment.branch_id for segment in segments]
    query = select(SeriesRow.branch_id, SeriesRow.id).where(
        SeriesRow.key == key, SeriesRow.branch_id.in_(branch_ids)
    )
    series_of_branch = dict(session.execute(query).all())

    parts = []
    for segment in reversed(segments):
        series_id = series_of_branch.get(segment.branch_id)
        low = max(segment.start, min_step or 0)
        high = _STEP_MAX if segment.stop is None else segment.stop - 1
        high = high if max_step is None else min(high, max_step)
        if series_id is None or low > high:
            continue
        found = chunks.span(session, series_id, low, high)
        if found is not None:
            parts.append(_Part(segment.branch_id, series_id, *found))
    return parts


def _sparse(session: Session, parts: Sequence[_Part], size: int) -> bool:
    """Tell whether blocks of ``size`` steps would hold few points each.

    Blocks pay when each stands for many points. Where steps lie far apart
    (a step that counts samples or tokens) a block holds a point or a few, and
    decoding the points from their chunks is cheaper than reading as many
    block rows.
    """
    points = sum(
        chunks.count_about(session, part.series_id, part.first, part.last)
        for part in parts
    )
    spanned = sum(part.last // size - part.first // size + 1 for part in parts)
    return min(spanned, points) * POINTS_PER_BLOCK_MIN > points


def _view_level(width: int) -> int:
    """Return the block level for a view whose buckets need ``width`` steps.

    The coarsest level with blocks of at most twice that width: a bucket is
    then one block, or several whole ones. Blocks up to twice as wide as asked
    give at least half as many buckets as asked for, from an eighth of the rows
    the level below would read.
    """
    fitting = [level for level, size in enumerate(BLOCK_SIZES) if size <= 2 * width]
    return fitting[-1] if fitting else blocks.RAW


def _read_points(session: Session, parts: Sequence[_Part]) -> SeriesData:
    data = SeriesData([], [], [], [], total=0, downsampled=False)
    for part in parts:
        points = chunks.read(session, part.series_id, part.first, part.last)
        data.steps.extend(points.steps.tolist())
        data.values.extend(points.values.tolist())
        data.times.extend(points.times.tolist())
        data.branches.extend([part.branch_id] * len(points))
    data.total = len(data.steps)
    return data


def _bucket_extremes(
    line: blocks.Blocks, branch_ids: IntArray, group: IntArray, total: int
) -> SeriesData:
    """Return the lowest point of each group and its first NaN or highest point."""
    found = blocks.find_extremes(line, group)
    low, high, nan = found.low, found.high, found.nan
    has_nan = line.nan_step[nan] != blocks.NO_STEP

    steps = np.r_[
        line.min_step[low], np.where(has_nan, line.nan_step[nan], line.max_step[high])
    ]
    values = np.r_[line.min_value[low], np.where(has_nan, np.nan, line.max_value[high])]
    times = np.r_[
        line.min_time[low], np.where(has_nan, line.nan_time[nan], line.max_time[high])
    ]
    branches = np.r_[
        branch_ids[low], np.where(has_nan, branch_ids[nan], branch_ids[high])
    ]

    # A bucket whose lowest point is also its highest gives one point.
    steps, picked = np.unique(steps, return_index=True)
    return SeriesData(
        steps=steps.tolist(),
        values=values[picked].tolist(),
        times=times[picked].tolist(),
        branches=branches[picked].tolist(),
        total=total,
        downsampled=True,
    )
