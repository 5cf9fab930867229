"""Point blocks: per-level summaries of a series that make views of long lines cheap.

Level ``k`` cuts a series' steps into aligned blocks of ``BLOCK_SIZES[k]`` steps
and keeps, per block, how many points it holds, its first and last step, its
lowest and highest point, and its first NaN. Level 0 summarises points; each
higher level summarises 8 blocks of the level below. Ingest rewrites the
blocks of the steps it stored, in the same transaction, by recomputing them
from what the database holds, so resent and out-of-order batches leave them
exact. A view covers a step range with the coarsest blocks that fit and the
finer blocks or points at its edges (:func:`cover`).

Extremes ignore NaN unless a block holds nothing else; ties go to the earliest
step. Migration 0002 fills blocks for older points by the same rules in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from panda.store.db import executemany_raw, fetch_raw
from panda.store.models import BLOCK_SIZES, Base

FANOUT = 8
"""Blocks of one level that make a block of the next."""

RAW = -1
"""The level of single points in :func:`cover`'s ranges."""

NO_STEP = -1
"""``nan_step`` of a block without NaN; steps are never negative."""

_RANGES_PER_QUERY = 200
_T = TypeVar("_T")

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
    def of_points(cls, rows: Sequence[tuple[Any, ...]]) -> Blocks:
        """Return one block per ``(step, value, time)`` row; a NULL value is NaN."""
        if not rows:
            return cls.empty()
        step_column, value_column, time_column = zip(*rows, strict=True)
        steps = np.array(step_column, dtype=np.int64)
        values = np.array(value_column, dtype=np.float64)
        times = np.array(time_column, dtype=np.float64)
        nan_steps = np.where(np.isnan(values), steps, NO_STEP)
        return cls(
            steps, np.ones(len(steps), dtype=np.int64), steps, steps,
            steps, values, times, steps, values, times, nan_steps, times,
        )  # fmt: skip

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[Any, ...]]) -> Blocks:
        """Return blocks from rows selected as :func:`_block_columns` lists them."""
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
        blocks: in step order.
        group: the group of each row, non-decreasing.
    """
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]).astype(np.int64)

    # np.lexsort sorts by its last key first: group, then the rule, then step.
    low_nan = np.isnan(blocks.min_value)
    low_key = np.where(low_nan, np.inf, blocks.min_value)
    low = np.lexsort((blocks.min_step, low_key, low_nan, group))[starts]

    high_nan = np.isnan(blocks.max_value)
    high_key = np.where(high_nan, np.inf, -blocks.max_value)
    high = np.lexsort((blocks.max_step, high_key, high_nan, group))[starts]

    nan_key = np.where(
        blocks.nan_step == NO_STEP, np.iinfo(np.int64).max, blocks.nan_step
    )
    nan = np.lexsort((nan_key, group))[starts]
    return Extremes(starts, low, high, nan)


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
    session: Session, series_id: int, points: Sequence[tuple[int, float, float]]
) -> None:
    """Fold ``(step, value, time)`` points, just stored, into the series' blocks.

    Call it in the transaction that stored the points, with exactly the points
    it stored: a stored point never changes, so each block is the merge of its
    old summary and the new points, whatever order they came in. The caller
    makes writers of one series take turns.
    """
    order = sorted(range(len(points)), key=lambda index: points[index][0])
    fresh = Blocks.of_points([points[index] for index in order])
    levels = []
    for level in range(len(BLOCK_SIZES)):
        parent = BLOCK_SIZES[0] if level == 0 else FANOUT
        fresh = merge(fresh, fresh.block // parent)
        levels.append(fresh)

    wanted = [(level, low, high) for level, new in enumerate(levels)
              for low, high in _ranges(new.block)]  # fmt: skip
    old = _split_levels(
        [_select_blocks(session, series_id, part) for part in _chunks(wanted)]
    )
    stale = [(level, low, high) for level, found in old.items()
             for low, high in _ranges(found.block)]  # fmt: skip
    if stale:
        session.execute(
            text(f"DELETE FROM point_blocks WHERE {_IN_RANGE}"),
            [_range_params(series_id, *part) for part in stale],
        )

    rows = []
    for level, new in enumerate(levels):
        if level in old:
            both = Blocks.concat([old[level], new])
            both = both.take(np.argsort(both.block, kind="stable"))
            new = merge(both, both.block)
        rows.extend(_block_rows(series_id, level, new))
    table = Base.metadata.tables["point_blocks"]
    executemany_raw(session, insert(table), rows)


def _split_levels(parts: Sequence[tuple[IntArray, Blocks]]) -> dict[int, Blocks]:
    """Regroup blocks read with their levels into one :class:`Blocks` per level."""
    levels = np.concatenate([level for level, _ in parts])
    found = Blocks.concat([blocks for _, blocks in parts])
    if not len(found):
        return {}
    return {
        int(level): found.take(np.flatnonzero(levels == level))
        for level in np.unique(levels)
    }


def _block_rows(series_id: int, level: int, blocks: Blocks) -> list[dict[str, Any]]:
    """Return ``blocks`` as rows for INSERT: plain Python numbers, NaN as NULL."""

    def nullable(values: FloatArray) -> list[float | None]:
        return [None if value != value else value for value in values.tolist()]

    no_nan = blocks.nan_step == NO_STEP
    columns = {
        "block": blocks.block.tolist(),
        "count": blocks.count.tolist(),
        "first_step": blocks.first_step.tolist(),
        "last_step": blocks.last_step.tolist(),
        "min_step": blocks.min_step.tolist(),
        "min_value": nullable(blocks.min_value),
        "min_time": blocks.min_time.tolist(),
        "max_step": blocks.max_step.tolist(),
        "max_value": nullable(blocks.max_value),
        "max_time": blocks.max_time.tolist(),
        "nan_step": [None if none else step for none, step in
                     zip(no_nan.tolist(), blocks.nan_step.tolist(), strict=True)],
        "nan_time": nullable(np.where(no_nan, np.nan, blocks.nan_time)),
    }  # fmt: skip
    names = list(columns)
    return [
        {"series_id": series_id, "level": level, **dict(zip(names, row, strict=True))}
        for row in zip(*columns.values(), strict=True)
    ]


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
            parts.append(
                Blocks.of_points(_select_points(session, series_id, low, high))
            )
        else:
            _, found = _select_blocks(session, series_id, [(part_level, low, high)])
            parts.append(found)
    return Blocks.concat(parts)


# Plain SQL: these run on every ingest and every view, where building and
# compiling SQLAlchemy expressions would cost more than the database work.
_BLOCK_COLUMNS = (
    "block, count, first_step, last_step, min_step, min_value, min_time, "
    "max_step, max_value, max_time, coalesce(nan_step, -1) AS nan_step, "
    "coalesce(nan_time, 0.0) AS nan_time, level"
)


def _select_points(
    session: Session, series_id: int, low: int, high: int
) -> list[tuple[Any, ...]]:
    statement = text(
        "SELECT step, value, time FROM points WHERE series_id = :series "
        "AND step BETWEEN :low AND :high ORDER BY step"
    ).bindparams(series=series_id, low=low, high=high)
    return fetch_raw(session, statement)


def _select_blocks(
    session: Session, series_id: int, ranges: Sequence[tuple[int, int, int]]
) -> tuple[IntArray, Blocks]:
    """Read the blocks in ``(level, low, high)`` ranges; return their levels too."""
    # One SELECT per range, glued with UNION ALL: SQLite uses only the
    # series_id part of the primary key for an OR of ranges, and would scan
    # every block of the series.
    selects, params = [], {}
    for index, (level, low, high) in enumerate(ranges):
        selects.append(
            f"SELECT {_BLOCK_COLUMNS} FROM point_blocks WHERE series_id = :series "
            f"AND level = :level{index} AND block BETWEEN :low{index} AND :high{index}"
        )
        params.update(
            {f"level{index}": level, f"low{index}": low, f"high{index}": high}
        )
    statement = text(" UNION ALL ".join(selects) + " ORDER BY level, block")
    rows = fetch_raw(session, statement.bindparams(series=series_id, **params))
    levels = np.array([row[12] for row in rows], dtype=np.int64)
    return levels, Blocks.of_rows(rows)


_IN_RANGE = "series_id = :series AND level = :level AND block BETWEEN :low AND :high"


def _range_params(series_id: int, level: int, low: int, high: int) -> dict[str, int]:
    return {"series": series_id, "level": level, "low": low, "high": high}


def _ranges(indices: IntArray) -> list[tuple[int, int]]:
    """Return the runs of consecutive values of sorted unique ``indices``."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1)
    firsts = np.r_[indices[0], indices[breaks + 1]]
    lasts = np.r_[indices[breaks], indices[-1]]
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def _chunks(ranges: list[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(ranges), _RANGES_PER_QUERY):
        yield ranges[start : start + _RANGES_PER_QUERY]
