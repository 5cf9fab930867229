"""Pack metric points into chunks of up to 512; point blocks start at 64 steps

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of panda.store.models.CHUNK_POINTS and the array encoding as of
# this revision: little-endian int64 steps, float64 values (NaN kept) and times.
_CHUNK_POINTS = 512
_PAGE_ROWS = 64 * _CHUNK_POINTS
# Point blocks: revision 0002 made levels of 8, 64, 512, 4096 and 32768 steps;
# this one drops the 8-step level, so level k + 1 becomes level k.
_OLD_LEVELS = 5

# Revision 0002's fill of 8-step blocks from the points, for the downgrade.
_FILL_EIGHT_STEP_BLOCKS = """
INSERT INTO point_blocks (series_id, level, block, count, first_step, last_step,
    min_step, min_value, min_time, max_step, max_value, max_time, nan_step, nan_time)
SELECT series_id, 0, block, count(*), min(step), max(step),
    max(CASE WHEN low_rank = 1 THEN step END),
    max(CASE WHEN low_rank = 1 THEN value END),
    max(CASE WHEN low_rank = 1 THEN time END),
    max(CASE WHEN high_rank = 1 THEN step END),
    max(CASE WHEN high_rank = 1 THEN value END),
    max(CASE WHEN high_rank = 1 THEN time END),
    min(CASE WHEN value IS NULL THEN step END),
    max(CASE WHEN nan_rank = 1 AND value IS NULL THEN time END)
FROM (
    SELECT series_id, step, value, time, step / 8 AS block,
        row_number() OVER (PARTITION BY series_id, step / 8
            ORDER BY value IS NULL, value, step) AS low_rank,
        row_number() OVER (PARTITION BY series_id, step / 8
            ORDER BY value IS NULL, value DESC, step) AS high_rank,
        row_number() OVER (PARTITION BY series_id, step / 8
            ORDER BY value IS NOT NULL, step) AS nan_rank
    FROM points
) AS ranked
GROUP BY series_id, block
"""

_points = sa.table(
    "points",
    sa.column("series_id", sa.Integer()),
    sa.column("step", sa.BigInteger()),
    sa.column("value", sa.Float()),
    sa.column("time", sa.Float()),
)
_chunks = sa.table(
    "point_chunks",
    sa.column("series_id", sa.Integer()),
    sa.column("first_step", sa.BigInteger()),
    sa.column("last_step", sa.BigInteger()),
    sa.column("count", sa.Integer()),
    sa.column("step_array", sa.LargeBinary()),
    sa.column("value_array", sa.LargeBinary()),
    sa.column("time_array", sa.LargeBinary()),
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "point_chunks",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("step_array", sa.LargeBinary(), nullable=False),
        sa.Column("value_array", sa.LargeBinary(), nullable=False),
        sa.Column("time_array", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_point_chunks_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "series_id", "first_step", name=op.f("pk_point_chunks")
        ),
    )

    connection = op.get_bind()
    for series_id in _series_with_points(connection, _points):
        for rows in _pages(connection, series_id):
            steps = np.array([row[0] for row in rows], dtype="<i8")
            # A NULL value was NaN; numpy reads None as NaN.
            values = np.array([row[1] for row in rows], dtype="<f8")
            times = np.array([row[2] for row in rows], dtype="<f8")
            connection.execute(
                _chunks.insert(), list(_chunk_rows(series_id, steps, values, times))
            )
    op.drop_table("points")

    op.execute("DELETE FROM point_blocks WHERE level = 0")
    # One level at a time, upwards, so that no row ever meets another's key.
    for level in range(1, _OLD_LEVELS):
        op.execute(f"UPDATE point_blocks SET level = {level - 1} WHERE level = {level}")


def _series_with_points(connection: sa.Connection, table: Any) -> list[int]:
    query = sa.select(table.c.series_id).distinct().order_by(table.c.series_id)
    return list(connection.scalars(query))


def _pages(connection: sa.Connection, series_id: int) -> Iterator[Sequence[Any]]:
    """Yield the series' points in step order, many chunks' worth at a time."""
    after = -1
    while True:
        query = (
            sa.select(_points.c.step, _points.c.value, _points.c.time)
            .where(_points.c.series_id == series_id, _points.c.step > after)
            .order_by(_points.c.step)
            .limit(_PAGE_ROWS)
        )
        rows = connection.execute(query).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _chunk_rows(
    series_id: int, steps: Any, values: Any, times: Any
) -> Iterator[dict[str, Any]]:
    for start in range(0, len(steps), _CHUNK_POINTS):
        piece = slice(start, start + _CHUNK_POINTS)
        yield {
            "series_id": series_id,
            "first_step": int(steps[piece][0]),
            "last_step": int(steps[piece][-1]),
            "count": len(steps[piece]),
            "step_array": steps[piece].tobytes(),
            "value_array": values[piece].tobytes(),
            "time_array": times[piece].tobytes(),
        }


def downgrade() -> None:
    """Revert this revision: one row per point again, NaN as NULL."""
    op.create_table(
        "points",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_points_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("series_id", "step", name=op.f("pk_points")),
        sqlite_with_rowid=False,
    )

    connection = op.get_bind()
    for series_id in _series_with_points(connection, _chunks):
        query = (
            sa.select(_chunks.c.step_array, _chunks.c.value_array, _chunks.c.time_array)
            .where(_chunks.c.series_id == series_id)
            .order_by(_chunks.c.first_step)
        )
        for step_data, value_data, time_data in connection.execute(query).all():
            steps = np.frombuffer(step_data, dtype="<i8").tolist()
            values = np.frombuffer(value_data, dtype="<f8").tolist()
            times = np.frombuffer(time_data, dtype="<f8").tolist()
            rows = [
                {
                    "series_id": series_id,
                    "step": step,
                    "value": None if value != value else value,
                    "time": time,
                }
                for step, value, time in zip(steps, values, times, strict=True)
            ]
            connection.execute(_points.insert(), rows)
    op.drop_table("point_chunks")

    for level in reversed(range(1, _OLD_LEVELS)):
        op.execute(f"UPDATE point_blocks SET level = {level} WHERE level = {level - 1}")
    op.execute(_FILL_EIGHT_STEP_BLOCKS)
