"""Add point_blocks, the per-level summaries of metric points, filled from points

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of panda.store.models.BLOCK_SIZES as of this revision: each level
# groups 8 blocks of the level below, the first 8 points.
_BLOCK_SIZES = (8, 64, 512, 4096, 32768)
_FANOUT = 8

# Level 0 from the points. Ties pick the earliest step; NaN (NULL) never wins
# an extreme unless the block holds nothing else, as at ingest.
_FILL_FROM_POINTS = """
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
    SELECT series_id, step, value, time, step / :fanout AS block,
        row_number() OVER (PARTITION BY series_id, step / :fanout
            ORDER BY value IS NULL, value, step) AS low_rank,
        row_number() OVER (PARTITION BY series_id, step / :fanout
            ORDER BY value IS NULL, value DESC, step) AS high_rank,
        row_number() OVER (PARTITION BY series_id, step / :fanout
            ORDER BY value IS NOT NULL, step) AS nan_rank
    FROM points
) AS ranked
GROUP BY series_id, block
"""

# Level k from level k - 1, by the same rules.
_FILL_FROM_BLOCKS = """
INSERT INTO point_blocks (series_id, level, block, count, first_step, last_step,
    min_step, min_value, min_time, max_step, max_value, max_time, nan_step, nan_time)
SELECT series_id, :level, parent, sum(count), min(first_step), max(last_step),
    max(CASE WHEN low_rank = 1 THEN min_step END),
    max(CASE WHEN low_rank = 1 THEN min_value END),
    max(CASE WHEN low_rank = 1 THEN min_time END),
    max(CASE WHEN high_rank = 1 THEN max_step END),
    max(CASE WHEN high_rank = 1 THEN max_value END),
    max(CASE WHEN high_rank = 1 THEN max_time END),
    min(nan_step),
    max(CASE WHEN nan_rank = 1 THEN nan_time END)
FROM (
    SELECT series_id, count, first_step, last_step, min_step, min_value, min_time,
        max_step, max_value, max_time, nan_step, nan_time,
        block / :fanout AS parent,
        row_number() OVER (PARTITION BY series_id, block / :fanout
            ORDER BY min_value IS NULL, min_value, min_step) AS low_rank,
        row_number() OVER (PARTITION BY series_id, block / :fanout
            ORDER BY max_value IS NULL, max_value DESC, max_step) AS high_rank,
        row_number() OVER (PARTITION BY series_id, block / :fanout
            ORDER BY nan_step IS NULL, nan_step) AS nan_rank
    FROM point_blocks
    WHERE level = :below
) AS ranked
GROUP BY series_id, parent
"""


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "point_blocks",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("min_time", sa.Float(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("max_time", sa.Float(), nullable=False),
        sa.Column("nan_step", sa.BigInteger(), nullable=True),
        sa.Column("nan_time", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_point_blocks_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "series_id", "level", "block", name=op.f("pk_point_blocks")
        ),
        sqlite_with_rowid=False,
    )

    # Points stored before this revision get their blocks now.
    op.execute(sa.text(_FILL_FROM_POINTS).bindparams(fanout=_BLOCK_SIZES[0]))
    for level in range(1, len(_BLOCK_SIZES)):
        statement = sa.text(_FILL_FROM_BLOCKS).bindparams(
            level=level, below=level - 1, fanout=_FANOUT
        )
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("point_blocks")
