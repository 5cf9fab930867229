"""Point blocks: the extremes of groups of blocks, checked against a plain loop."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from panda.store import blocks


def _reference(values: list[float], groups: list[int]) -> list[tuple[int, int, int]]:
    """Return per group (low, high, nan): first row of the lowest and highest
    number, NaN ignored unless the group holds nothing else; first NaN row."""
    found = []
    for group in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        numbers = [i for i in rows if not math.isnan(values[i])]
        low = min(numbers, key=lambda i: (values[i], i)) if numbers else rows[0]
        high = min(numbers, key=lambda i: (-values[i], i)) if numbers else rows[0]
        nans = [i for i in rows if math.isnan(values[i])]
        found.append((low, high, nans[0] if nans else rows[0]))
    return found


@pytest.mark.parametrize("seed", range(20))
def test_find_extremes_matches_plain_loop_with_ties_nan_and_infinities(
    seed: int,
) -> None:
    chance = random.Random(seed)
    size = chance.randrange(1, 300)
    pool = [math.nan, math.inf, -math.inf, 0.0, 1.0, -1.0, 2.5]
    values = [chance.choice(pool) for _ in range(size)]
    groups = sorted(chance.randrange(max(1, size // 7)) for _ in range(size))
    steps = np.arange(size, dtype=np.int64) * 3
    line = blocks.Blocks.of_arrays(
        steps, np.array(values), np.arange(size, dtype=np.float64)
    )

    found = blocks.find_extremes(line, np.array(groups, dtype=np.int64))

    expected = _reference(values, groups)
    assert list(zip(found.low, found.high, found.nan, strict=True)) == expected
    for (_, _, nan), row in zip(expected, found.nan, strict=True):
        has_nan = math.isnan(values[nan])
        assert (line.nan_step[row] != blocks.NO_STEP) == has_nan
