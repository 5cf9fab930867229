"""The tables: runs, their branches, metric series and points, nudges, checkpoints.

A run's history is a tree of branches. Points belong to a series, which is one
metric key on one branch, and are stored in *chunks* (``point_chunks``) of up to
``CHUNK_POINTS`` consecutive points packed as arrays: a series holds at most one
point per step, so a resent point is ignored, and NaN and infinities are kept
as they are (see :mod:`panda.store.chunks`).

Each series also keeps *blocks* (``point_blocks``): per level, the count,
extremes and first NaN of the points in every aligned run of ``BLOCK_SIZES[level]``
steps, so a view of a long line reads a few thousand rows instead of every point.

Two references are plain integers without a foreign key, because a foreign key
would close a cycle that SQLite cannot create without ALTER:
``runs.current_branch_id`` and ``branches.checkpoint_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

KEY_MAX_CHARS = 200
NAME_MAX_CHARS = 200
CHUNK_POINTS = 512
"""Points a chunk holds at most. A full chunk is 12 KiB; appending to a series
rewrites its last chunk, so this bounds the bytes written per batch."""
BLOCK_SIZES = (64, 512, 4096, 32768)
"""Steps per block at each rollup level; each level groups 8 blocks of the one below.

Views of fewer than 64 steps per bucket read the points themselves, which the
chunks make cheap; a finer level would cost ingest more than it saves views."""


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone, so a naive value read from it is taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Base of every panda table; constraint names follow NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    """One training run; ``last_step`` and ``last_values`` are kept on ingest."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_CHARS))
    status: Mapped[str] = mapped_column(String(16), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    command: Mapped[list[str] | None] = mapped_column(JSON)
    cwd: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    # {key: [step, value]}; non-finite values as "NaN", "Infinity", "-Infinity".
    last_values: Mapped[dict[str, Any]] = mapped_column(JSON)
    current_branch_id: Mapped[int | None] = mapped_column(Integer)
    parent_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL")
    )
    parent_step: Mapped[int | None] = mapped_column(BigInteger)


class Branch(Base):
    """A stretch of a run's history that starts at ``start_step``."""

    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("branches.id", ondelete="SET NULL")
    )
    start_step: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))
    checkpoint_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SeriesRow(Base):
    """One metric key on one branch."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("branch_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(KEY_MAX_CHARS))


class PointChunk(Base):
    """Consecutive points of a series, steps ``first_step..last_step``, as arrays.

    ``step_array`` holds little-endian int64 steps, strictly increasing;
    ``value_array`` and ``time_array`` little-endian float64 values and times.
    Chunks of one series never overlap in steps.
    """

    __tablename__ = "point_chunks"
    __table_args__ = (PrimaryKeyConstraint("series_id", "first_step"),)

    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    step_array: Mapped[bytes] = mapped_column(LargeBinary)
    value_array: Mapped[bytes] = mapped_column(LargeBinary)
    time_array: Mapped[bytes] = mapped_column(LargeBinary)


class PointBlock(Base):
    """The summary of a series' points in steps ``[block, block + 1) * size``.

    ``size`` is ``BLOCK_SIZES[level]``. The extremes ignore NaN (NULL when every
    point is NaN); ``nan_step`` is the first NaN's step, NULL when there is none.
    Ingest rewrites the blocks a batch touches in the batch's own transaction.
    """

    __tablename__ = "point_blocks"
    __table_args__ = (
        PrimaryKeyConstraint("series_id", "level", "block"),
        {"sqlite_with_rowid": False},
    )

    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    level: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    min_step: Mapped[int] = mapped_column(BigInteger)
    min_value: Mapped[float | None] = mapped_column(Float)
    min_time: Mapped[float] = mapped_column(Float)
    max_step: Mapped[int] = mapped_column(BigInteger)
    max_value: Mapped[float | None] = mapped_column(Float)
    max_time: Mapped[float] = mapped_column(Float)
    nan_step: Mapped[int | None] = mapped_column(BigInteger)
    nan_time: Mapped[float | None] = mapped_column(Float)


class Checkpoint(Base):
    """A checkpoint file the training side wrote; the server never opens it."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    step: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Nudge(Base):
    """A requested change of lr or momentum, or the undo of an earlier one."""

    __tablename__ = "nudges"
    __table_args__ = (Index("ix_nudges_run_id_status", "run_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    param: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    old_value: Mapped[float | None] = mapped_column(Float)
    # an int index or a str name; JSON keeps which of the two it was.
    param_group: Mapped[int | str | None] = mapped_column(JSON)
    factor: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_step: Mapped[int | None] = mapped_column(BigInteger)
    applied_branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id"))
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("nudges.id"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))


class Sweep(Base):
    """A caviar sweep: many runs of one training command with sampled settings.

    ``config`` is :meth:`panda.caviar.SweepConfig.to_dict`; its strategy reads
    the sweep's trials to suggest the next points.
    """

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_CHARS), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SweepTrial(Base):
    """One trial of a sweep: its params, and the run that trained with them.

    ``number`` counts from 1 within the sweep. ``objective`` is NULL until the
    trial finished with a finite value; a diverged or crashed trial has status
    ``failed`` instead, because SQLite cannot keep NaN.
    """

    __tablename__ = "sweep_trials"
    __table_args__ = (UniqueConstraint("sweep_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    round: Mapped[int] = mapped_column(Integer)
    objective: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    stop_requested: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
