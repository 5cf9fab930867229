"""Trials: one training run of a sweep, as the search strategies see it.

A trial's ``objective`` is ``None`` while it runs, a finite number once it has
finished, and NaN or +/-inf when it finished badly (diverged, crashed): strategies rank
such trials below every finite one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from panda.caviar.space import ParamValue

Direction = Literal["minimize", "maximize"]
"""Whether a smaller (a loss) or a larger (an accuracy) objective is better."""

DIRECTIONS: tuple[Direction, ...] = ("minimize", "maximize")


@dataclass(frozen=True)
class Trial:
    """One evaluated or running point of a sweep.

    Attributes:
        params: the hyperparameters the trial trains with.
        objective: the final objective; ``None`` while running, NaN if it failed.
        round: the coarse-to-fine round the trial was suggested in (0 otherwise).
        id: the caller's handle on the trial, such as its panda run id; not
            compared, and never read by the strategies.
    """

    params: Mapping[str, ParamValue]
    objective: float | None = None
    round: int = 0
    id: str | None = field(default=None, compare=False)

    @property
    def finished(self) -> bool:
        """Whether the trial has an objective, finite or not."""
        return self.objective is not None

    @property
    def succeeded(self) -> bool:
        """Whether the trial finished with a finite objective."""
        return self.objective is not None and math.isfinite(self.objective)


def check_direction(direction: str) -> Direction:
    """Return ``direction`` if it is 'minimize' or 'maximize', else raise ValueError."""
    if direction == "minimize":
        return "minimize"
    if direction == "maximize":
        return "maximize"
    raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")


def rank_trials(history: Sequence[Trial], direction: Direction) -> list[Trial]:
    """Return the succeeded trials, best first; ties keep history order."""
    succeeded = [trial for trial in history if trial.succeeded]
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(succeeded, key=lambda trial: sign * float(trial.objective or 0.0))


def best_trial(history: Sequence[Trial], direction: Direction) -> Trial | None:
    """Return the trial with the best finite objective, or None if there is none."""
    ranked = rank_trials(history, direction)
    return ranked[0] if ranked else None
