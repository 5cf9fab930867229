"""Point blocks: per-level summaries of a series that make views of long lines cheap.

Level ``k`` cuts a series' steps into aligned blocks of ``BLOCK_SIZES[k]`` steps
and keeps, per block, how many points it holds, its first and last step, its
lowest and highest point, and its first NaN. Level 0 summarises points; each
higher level summarises 8 blocks of the level below. Ingest folds the points it
stored into their blocks, one upsert per block in the same transaction, so
resent and out-of-order batches leave them exact. A view covers a step range
with the coarsest blocks that fit and the finer blocks or points at its edges
(:func:`cover`).

Extremes ignore NaN unless a block holds nothing else; ties go to the earliest
step. Migrations 0002 and 0004 fill blocks for older points by the same rules
in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.orm import Session

from panda.store import chunks
from panda.store.db import executemany_raw, fetch_raw
from panda.store.models import BLOCK_SIZES

FANOUT = 8
"""Blocks of one level that make a block of the next."""

RAW = -1
"""The level of single points in :func:`cover`'s ranges."""

NO_STEP = -1
"""``nan_step`` of a block without NaN; steps are never negative."""


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class Blocks:
    """Summaries of consecutive stretches of one series, as parallel columns.

    A single point is a block of count 1. ``block`` is the block index at the
    level the rows were read from (the step, for points).
    """

    block: IntArray
    count: IntArray
    first_step: IntArray
    last_step: IntArray
    min_step: IntArray
    min_value: FloatArray
    min_time: FloatArray
    max_step: IntArray
    max_value: FloatArray
    max_time: FloatArray
    nan_step: IntArray
    nan_time: FloatArray

    def __len__(self) -> int:
        return len(self.block)

    @classmethod
    def of_arrays(
        cls, steps: IntArray, values: FloatArray, times: FloatArray
    ) -> Blocks:
        """Return one block per point given as parallel columns."""
        nan_steps = np.where(np.isnan(values), steps, NO_STEP)
        return cls(
            steps, np.ones(len(steps), dtype=np.int64), steps, steps,
            steps, values, times, steps, values, times, nan_steps, times,
        )  # fmt: skip

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[Any, ...]]) -> Blocks:
        """Return blocks from rows holding the columns of ``_BLOCK_COLUMNS``."""
        if not rows:
            return cls.empty()
        columns = list(zip(*rows, strict=True))
        ints = [np.array(columns[i], dtype=np.int64) for i in (0, 1, 2, 3, 4, 7, 10)]
        floats = [np.array(columns[i], dtype=np.float64) for i in (5, 6, 8, 9, 11)]
        block, count, first, last, min_step, max_step, nan_step = ints
        min_value, min_time, max_value, max_time, nan_time = floats
        return cls(
            block, count, first, last, min_step, min_value, min_time,
            max_step, max_value, max_time, nan_step, nan_time,
        )  # fmt: skip

    @classmethod
    def empty(cls) -> Blocks:
        """Return no blocks."""
        ints, floats = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        return cls(
            ints, ints, ints, ints, ints, floats, floats,
            ints, floats, floats, ints, floats,
        )  # fmt: skip

    @classmethod
    def concat(cls, parts: Sequence[Blocks]) -> Blocks:
        """Return ``parts`` one after the other."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        names = cls.__dataclass_fields__
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def take(self, index: IntArray) -> Blocks:
        """Return the rows at ``index``."""
        names = self.__dataclass_fields__
        return Blocks(**{name: getattr(self, name)[index] for name in names})


@dataclass
class Extremes:
    """Per group of blocks: where it starts and which rows hold its extremes."""

    starts: IntArray
    low: IntArray
    high: IntArray
    nan: IntArray


def find_extremes(blocks: Blocks, group: IntArray) -> Extremes:
    """Find, per group, the rows with the lowest and highest value and first NaN.

    Args:
        blocks: in step order, their step ranges not overlapping, so that the
            first of two rows is the one with the earlier steps.
        group: the group of each row, non-decreasing.
    """
    rows = len(group)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]).astype(np.int64)
    low = _first_best(blocks.min_value, starts)
    high = _first_best(-blocks.max_value, starts)
    has_nan = blocks.nan_step != NO_STEP
    nan = np.minimum.reduceat(np.where(has_nan, np.arange(rows), rows), starts)
    # A group without NaN points at its first row, whose nan_step says so.
    nan = np.where(nan == rows, starts, nan)
    return Extremes(starts, low, high, nan)


def _first_best(keys: FloatArray, starts: IntArray) -> IntArray:
    """Return, per group, the first row holding its lowest key, NaN ignored;
    the group's first row when it holds nothing but NaN.

    Linear in the rows: a minimum per group, then the first row that equals it.
    """
    rows = len(keys)
    is_nan = np.isnan(keys)
    numbers = np.where(is_nan, np.inf, keys)
    lowest = np.minimum.reduceat(numbers, starts)
    sizes = np.diff(np.r_[starts, rows])
    hit = (numbers == np.repeat(lowest, sizes)) & ~is_nan
    first = np.minimum.reduceat(np.where(hit, np.arange(rows), rows), starts)
    return np.where(first == rows, starts, first)


def merge(blocks: Blocks, group: IntArray) -> Blocks:
    """Return one block per group of ``blocks``, numbered by ``group``."""
    if not len(blocks):
        return blocks
    found = find_extremes(blocks, group)
    starts = found.starts
    return Blocks(
        block=group[starts],
        count=np.add.reduceat(blocks.count, starts),
        first_step=np.minimum.reduceat(blocks.first_step, starts),
        last_step=np.maximum.reduceat(blocks.last_step, starts),
        min_step=blocks.min_step[found.low],
        min_value=blocks.min_value[found.low],
        min_time=blocks.min_time[found.low],
        max_step=blocks.max_step[found.high],
        max_value=blocks.max_value[found.high],
        max_time=blocks.max_time[found.high],
        nan_step=blocks.nan_step[found.nan],
        nan_time=blocks.nan_time[found.nan],
    )


# -- ingest --------------------------------------------------------------------


def add_points(
    session: Session,
    series_id: int,
    steps: IntArray,
    values: FloatArray,
    times: FloatArray,
) -> None:
    """Fold points, just stored, into the series' blocks.

    Call it in the transaction that stored the points, with exactly the points
    it stored, as parallel columns in any order: a stored point never changes,
    so a block is the merge of its old summary and the new points, whatever
    order they came in. One upsert per block does the merge in the database.
    The caller makes writers of one series take turns.
    """
    if len(steps) and not (steps[1:] > steps[:-1]).all():
        order = np.argsort(steps, kind="stable")
        steps, values, times = steps[order], values[order], times[order]
    fresh = Blocks.of_arrays(steps, values, times)
    rows: list[tuple[Any, ...]] = []
    for level in range(len(BLOCK_SIZES)):
        parent = BLOCK_SIZES[0] if level == 0 else FANOUT
        fresh = merge(fresh, fresh.block // parent)
        rows.extend(_block_rows(series_id, level, fresh))
    executemany_raw(session, _UPSERT_STATEMENT, rows, _UPSERT_COLUMNS)


# The new summary wins an extreme by the rules of find_extremes: a number beats
# NaN (NULL), a lower (higher) number beats a higher (lower) one, and on a tie
# the earlier step wins. Every SET reads the row as it was before the update.
_NEW_LOW_WINS = """(excluded.min_value IS NOT NULL AND (point_blocks.min_value IS NULL
    OR excluded.min_value < point_blocks.min_value
    OR (excluded.min_value = point_blocks.min_value
        AND excluded.min_step < point_blocks.min_step)))
  OR (excluded.min_value IS NULL AND point_blocks.min_value IS NULL
    AND excluded.min_step < point_blocks.min_step)"""
_NEW_HIGH_WINS = """(excluded.max_value IS NOT NULL AND (point_blocks.max_value IS NULL
    OR excluded.max_value > point_blocks.max_value
    OR (excluded.max_value = point_blocks.max_value
        AND excluded.max_step < point_blocks.max_step)))
  OR (excluded.max_value IS NULL AND point_blocks.max_value IS NULL
    AND excluded.max_step < point_blocks.max_step)"""
_NEW_NAN_WINS = """excluded.nan_step IS NOT NULL AND (point_blocks.nan_step IS NULL
    OR excluded.nan_step < point_blocks.nan_step)"""


def _pick(condition: str, column: str) -> str:
    return (
        f"{column} = CASE WHEN {condition} THEN excluded.{column} "
        f"ELSE point_blocks.{column} END"
    )


_UPSERT = f"""INSERT INTO point_blocks (series_id, level, block, count, first_step,
    last_step, min_step, min_value, min_time, max_step, max_value, max_time,
    nan_step, nan_time)
VALUES (:series_id, :level, :block, :count, :first_step, :last_step, :min_step,
    :min_value, :min_time, :max_step, :max_value, :max_time, :nan_step, :nan_time)
ON CONFLICT (series_id, level, block) DO UPDATE SET
    count = point_blocks.count + excluded.count,
    {_pick("excluded.first_step < point_blocks.first_step", "first_step")},
    {_pick("excluded.last_step > point_blocks.last_step", "last_step")},
    {_pick(_NEW_LOW_WINS, "min_step")},
    {_pick(_NEW_LOW_WINS, "min_value")},
    {_pick(_NEW_LOW_WINS, "min_time")},
    {_pick(_NEW_HIGH_WINS, "max_step")},
    {_pick(_NEW_HIGH_WINS, "max_value")},
    {_pick(_NEW_HIGH_WINS, "max_time")},
    {_pick(_NEW_NAN_WINS, "nan_step")},
    {_pick(_NEW_NAN_WINS, "nan_time")}"""


_UPSERT_STATEMENT = text(_UPSERT)
_UPSERT_COLUMNS = (
    "series_id", "level", "block", "count", "first_step", "last_step", "min_step",
    "min_value", "min_time", "max_step", "max_value", "max_time", "nan_step",
    "nan_time",
)  # fmt: skip


def _block_rows(series_id: int, level: int, blocks: Blocks) -> list[tuple[Any, ...]]:
    """Return ``blocks`` as rows of ``_UPSERT_COLUMNS``: plain numbers, NaN as NULL."""

    def nullable(values: FloatArray) -> list[float | None]:
        if not np.isnan(values).any():
            return values.tolist()  # type: ignore[no-any-return]
        return [None if value != value else value for value in values.tolist()]

    no_nan = blocks.nan_step == NO_STEP
    nan_steps: list[int | None]
    nan_times: list[float | None]
    if no_nan.all():
        nan_steps, nan_times = [None] * len(blocks), [None] * len(blocks)
    else:
        nan_steps = [
            None if step == NO_STEP else step for step in blocks.nan_step.tolist()
        ]
        nan_times = nullable(np.where(no_nan, np.nan, blocks.nan_time))
    return list(
        zip(
            repeat(series_id), repeat(level), blocks.block.tolist(),
            blocks.count.tolist(), blocks.first_step.tolist(),
            blocks.last_step.tolist(), blocks.min_step.tolist(),
            nullable(blocks.min_value), blocks.min_time.tolist(),
            blocks.max_step.tolist(), nullable(blocks.max_value),
            blocks.max_time.tolist(), nan_steps, nan_times,
        )
    )  # fmt: skip


# -- reading -------------------------------------------------------------------


def cover(first: int, last: int, level: int) -> Iterator[tuple[int, int, int]]:
    """Split steps ``[first, last]`` into ``(level, low, high)`` ranges.

    The middle is the whole blocks of ``level`` (block indices ``low..high``);
    the edges, which only partly fill a block, go to finer levels, down to
    single points (level :data:`RAW`, steps ``low..high``). In step order.
    """
    if level == RAW:
        yield RAW, first, last
        return
    size = BLOCK_SIZES[level]
    low = -(-first // size)
    high = (last + 1) // size - 1
    if low > high:
        yield from cover(first, last, level - 1)
        return
    if first < low * size:
        yield from cover(first, low * size - 1, level - 1)
    yield level, low, high
    if (high + 1) * size <= last:
        yield from cover((high + 1) * size, last, level - 1)


def read_cover(
    session: Session, series_id: int, first: int, last: int, level: int
) -> Blocks:
    """Return the blocks and points that :func:`cover` splits the steps into."""
    parts = []
    for part_level, low, high in cover(first, last, level):
        if part_level == RAW:
            points = chunks.read(session, series_id, low, high)
            parts.append(Blocks.of_arrays(points.steps, points.values, points.times))
        else:
            parts.append(_select_blocks(session, series_id, part_level, low, high))
    return Blocks.concat(parts)


# Plain SQL: these run on every ingest and every view, where building and
# compiling SQLAlchemy expressions would cost more than the database work.
_BLOCK_COLUMNS = (
    "block, count, first_step, last_step, min_step, min_value, min_time, "
    "max_step, max_value, max_time, coalesce(nan_step, -1) AS nan_step, "
    "coalesce(nan_time, 0.0) AS nan_time"
)


_SELECT_BLOCKS = text(
    f"SELECT {_BLOCK_COLUMNS} FROM point_blocks WHERE series_id = :series "
    "AND level = :level AND block BETWEEN :low AND :high ORDER BY block"
)


def _select_blocks(
    session: Session, series_id: int, level: int, low: int, high: int
) -> Blocks:
    params = {"series": series_id, "level": level, "low": low, "high": high}
    return Blocks.of_rows(fetch_raw(session, _SELECT_BLOCKS, params))
