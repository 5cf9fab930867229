"""Point chunks: a series' points stored as packed arrays, many points to a row.

A chunk holds up to :data:`CHUNK_POINTS` points of one series in step order:
their steps (int64), values (float64, NaN and infinities as they are) and
times (float64), each column one little-endian byte string. The chunks of a
series never overlap in steps, so the chunk that holds a step, or would take
it, is the last one that starts at or before it.

Storing a batch costs a few rows, not a row per point: that is what lets
ingest keep up with a training loop that logs every step. The price is paid on
rare paths: a point that arrives out of order rewrites the chunk it falls in,
and a chunk that overflows splits into halves, as a B-tree node does, so that
chunks stay at least half full whatever order points come in.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.orm import Session

from panda.store.db import executemany_raw, fetch_raw
from panda.store.models import CHUNK_POINTS

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_STEP_DTYPE = np.dtype("<i8")
_FLOAT_DTYPE = np.dtype("<f8")


@dataclass(frozen=True)
class Points:
    """Points of one series as parallel numpy columns."""

    steps: IntArray
    values: FloatArray
    times: FloatArray

    def __len__(self) -> int:
        return len(self.steps)

    @classmethod
    def of(
        cls, steps: Sequence[int], values: Sequence[float], times: Sequence[float]
    ) -> Points:
        """Return the columns as numpy arrays."""
        return cls(
            np.asarray(steps, dtype=np.int64),
            np.asarray(values, dtype=np.float64),
            np.asarray(times, dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> Points:
        """Return no points."""
        return cls.of([], [], [])

    @classmethod
    def concat(cls, parts: Sequence[Points]) -> Points:
        """Return ``parts`` one after the other."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([part.steps for part in parts]),
            np.concatenate([part.values for part in parts]),
            np.concatenate([part.times for part in parts]),
        )

    @property
    def increasing(self) -> bool:
        """Tell whether every step is larger than the one before it."""
        return bool((self.steps[1:] > self.steps[:-1]).all())

    def take(self, index: IntArray | slice) -> Points:
        """Return the points at ``index``."""
        return Points(self.steps[index], self.values[index], self.times[index])

    def between(self, low: int, high: int) -> Points:
        """Return the points with ``low <= step <= high``; steps must be sorted."""
        start = int(np.searchsorted(self.steps, low, side="left"))
        stop = int(np.searchsorted(self.steps, high, side="right"))
        if start == 0 and stop == len(self):
            return self
        return self.take(slice(start, stop))


@dataclass(frozen=True)
class _Chunk:
    """A stored chunk: where it starts, and its points."""

    first_step: int
    points: Points


# -- writing -------------------------------------------------------------------


def store(session: Session, series_id: int, points: Points) -> IntArray:
    """Store those of ``points`` the series does not hold yet; return their indices.

    Points may come in any order. A step the series already holds keeps its
    stored point, and of two points at one step in ``points`` the first wins.
    The returned indices into ``points`` are in ascending order. Call it in a
    write transaction; the caller makes writers of one series take turns.
    """
    if not len(points):
        return np.empty(0, dtype=np.int64)
    increasing = points.increasing
    if increasing:
        first_index = np.arange(len(points), dtype=np.int64)
        candidates = points
    else:
        _, first_index = np.unique(points.steps, return_index=True)
        first_index = first_index.astype(np.int64)
        candidates = points.take(first_index)

    tail = _read_end(session, series_id, last=True)
    if tail is None or int(candidates.steps[0]) > int(tail.points.steps[-1]):
        # Past every stored step: every point is new, and goes at the end.
        _append(session, series_id, tail, candidates)
        return first_index if increasing else np.sort(first_index)

    low, high = int(candidates.steps[0]), int(candidates.steps[-1])
    stored = _read_chunks(session, series_id, low, high)
    if not stored:
        # Every new step comes before the first chunk: they go into it.
        head = _read_end(session, series_id, last=False)
        assert head is not None, "a series with a tail chunk has a first one"
        stored = [head]
    held = Points.concat([chunk.points for chunk in stored]).steps
    is_new = ~np.isin(candidates.steps, held, assume_unique=True)
    if not is_new.any():
        return np.empty(0, dtype=np.int64)
    _insert_between(session, series_id, stored, candidates.take(np.flatnonzero(is_new)))
    return np.sort(first_index[is_new])


def _append(
    session: Session, series_id: int, tail: _Chunk | None, points: Points
) -> None:
    """Add ``points``, all past the series' last step, filling the tail chunk."""
    rest = points
    if tail is not None and len(tail.points) < CHUNK_POINTS:
        room = CHUNK_POINTS - len(tail.points)
        filled = Points.concat([tail.points, points.take(slice(0, room))])
        _update(session, series_id, tail.first_step, filled)
        rest = points.take(slice(room, None))
    _insert(session, series_id, _pieces(rest))


def _insert_between(
    session: Session, series_id: int, stored: Sequence[_Chunk], new: Points
) -> None:
    """Merge ``new`` points (sorted, none stored yet) into the chunks they fall in.

    ``stored`` are the chunks from the one that holds or precedes the first
    new step to the last that starts at or before the last new step, or, when
    every new step comes before the series' first chunk, that chunk. A new
    point belongs to the last of them that starts at or before it, or, before
    them all, to the first: either way the chunks still never overlap.
    """
    starts = np.array([chunk.first_step for chunk in stored], dtype=np.int64)
    target = np.maximum(np.searchsorted(starts, new.steps, side="right") - 1, 0)
    rewritten = np.unique(target)
    merged: list[Points] = []
    for index in rewritten.tolist():
        chunk = stored[index]
        mine = np.flatnonzero(target == index)
        combined = Points.concat([chunk.points, new.take(mine)])
        merged.append(combined.take(np.argsort(combined.steps, kind="stable")))

    gone = [(series_id, stored[index].first_step) for index in rewritten.tolist()]
    executemany_raw(session, _DELETE, gone, ("series_id", "first_step"))
    _insert(session, series_id, (p for part in merged for p in _halves(part)))


def _pieces(points: Points) -> Iterator[Points]:
    """Cut sorted points into full chunks of :data:`CHUNK_POINTS`, and a rest."""
    for start in range(0, len(points), CHUNK_POINTS):
        yield points.take(slice(start, start + CHUNK_POINTS))


def _halves(points: Points) -> Iterator[Points]:
    """Cut sorted points into as few chunks as fit them, of near-equal sizes.

    An overflowing chunk of 513 points becomes two of 257 and 256 rather than
    512 and 1: points that keep arriving in the middle of a line then fill
    chunks instead of leaving a trail of one-point rows.
    """
    count = -(-len(points) // CHUNK_POINTS)
    bounds = np.linspace(0, len(points), count + 1).round().astype(np.int64)
    for start, stop in itertools.pairwise(bounds.tolist()):
        yield points.take(slice(start, stop))


_INSERT = text(
    "INSERT INTO point_chunks (series_id, first_step, last_step, count, "
    "step_array, value_array, time_array) VALUES (:series_id, :first_step, "
    ":last_step, :count, :step_array, :value_array, :time_array)"
)
_UPDATE = text(
    "UPDATE point_chunks SET last_step = :last_step, count = :count, "
    "step_array = :step_array, value_array = :value_array, "
    "time_array = :time_array WHERE series_id = :series_id "
    "AND first_step = :first_step"
)
_DELETE = text(
    "DELETE FROM point_chunks WHERE series_id = :series_id AND first_step = :first_step"
)
_COLUMNS = (
    "series_id", "first_step", "last_step", "count",
    "step_array", "value_array", "time_array",
)  # fmt: skip


def _row(series_id: int, first_step: int, points: Points) -> tuple[Any, ...]:
    return (
        series_id,
        first_step,
        int(points.steps[-1]),
        len(points),
        points.steps.astype(_STEP_DTYPE, copy=False).tobytes(),
        points.values.astype(_FLOAT_DTYPE, copy=False).tobytes(),
        points.times.astype(_FLOAT_DTYPE, copy=False).tobytes(),
    )


def _insert(session: Session, series_id: int, pieces: Iterator[Points]) -> None:
    rows = [_row(series_id, int(piece.steps[0]), piece) for piece in pieces]
    if rows:
        executemany_raw(session, _INSERT, rows, _COLUMNS)


def _update(session: Session, series_id: int, first_step: int, points: Points) -> None:
    executemany_raw(session, _UPDATE, [_row(series_id, first_step, points)], _COLUMNS)


# -- reading -------------------------------------------------------------------


def _decode(step_data: bytes, value_data: bytes, time_data: bytes) -> Points:
    return Points(
        np.frombuffer(step_data, dtype=_STEP_DTYPE).astype(np.int64, copy=False),
        np.frombuffer(value_data, dtype=_FLOAT_DTYPE).astype(np.float64, copy=False),
        np.frombuffer(time_data, dtype=_FLOAT_DTYPE).astype(np.float64, copy=False),
    )


_TAIL = text(
    "SELECT first_step, step_array, value_array, time_array FROM point_chunks "
    "WHERE series_id = :series ORDER BY first_step DESC LIMIT 1"
)
_HEAD = text(
    "SELECT first_step, step_array, value_array, time_array FROM point_chunks "
    "WHERE series_id = :series ORDER BY first_step LIMIT 1"
)

# The chunks from the one that holds ``low`` (or the first after it) to the last
# that starts at or before ``high``: two seeks on the primary key.
_IN_RANGE = (
    "series_id = :series AND first_step <= :high AND first_step >= coalesce(("
    "SELECT max(first_step) FROM point_chunks WHERE series_id = :series "
    "AND first_step <= :low), :low)"
)
_BETWEEN = text(
    "SELECT first_step, step_array, value_array, time_array FROM point_chunks "
    f"WHERE {_IN_RANGE} ORDER BY first_step"
)
_FIRST_STEPS = text(
    "SELECT first_step, step_array FROM point_chunks "
    f"WHERE {_IN_RANGE} ORDER BY first_step LIMIT 2"
)
_COUNT = text(f"SELECT coalesce(sum(count), 0) FROM point_chunks WHERE {_IN_RANGE}")
_LAST_STEPS = text(
    "SELECT step_array FROM point_chunks WHERE series_id = :series "
    "AND first_step <= :high ORDER BY first_step DESC LIMIT 1"
)


def _read_end(session: Session, series_id: int, *, last: bool) -> _Chunk | None:
    """Return the series' last (or first) chunk, None when it holds no points."""
    rows = fetch_raw(session, _TAIL if last else _HEAD, {"series": series_id})
    if not rows:
        return None
    first_step, *arrays = rows[0]
    return _Chunk(first_step, _decode(*arrays))


def _read_chunks(session: Session, series_id: int, low: int, high: int) -> list[_Chunk]:
    params = {"series": series_id, "low": low, "high": high}
    return [
        _Chunk(first_step, _decode(*arrays))
        for first_step, *arrays in fetch_raw(session, _BETWEEN, params)
    ]


def read(session: Session, series_id: int, low: int, high: int) -> Points:
    """Return the series' points with ``low <= step <= high``, in step order."""
    chunks = _read_chunks(session, series_id, low, high)
    return Points.concat([chunk.points for chunk in chunks]).between(low, high)


def count_about(session: Session, series_id: int, low: int, high: int) -> int:
    """Return how many points the chunks that hold steps ``[low, high]`` hold.

    An estimate from the chunk rows alone: the chunks at both ends count whole.
    """
    params = {"series": series_id, "low": low, "high": high}
    return int(fetch_raw(session, _COUNT, params)[0][0])


def span(
    session: Session, series_id: int, low: int, high: int
) -> tuple[int, int] | None:
    """Return the first and last stored step within ``[low, high]``, if any."""
    # The chunk that holds low, or the one after it when low falls in a gap.
    params = {"series": series_id, "low": low, "high": high}
    rows = fetch_raw(session, _FIRST_STEPS, params)
    if not rows:
        return None
    steps = np.concatenate([np.frombuffer(row[1], dtype=_STEP_DTYPE) for row in rows])
    later = steps[steps >= low]
    if not len(later) or int(later[0]) > high:
        return None

    (row,) = fetch_raw(session, _LAST_STEPS, {"series": series_id, "high": high})
    steps = np.frombuffer(row[0], dtype=_STEP_DTYPE)
    last = steps[np.searchsorted(steps, high, side="right") - 1]
    return int(later[0]), int(last)
