"""Suggestions with their reasons: next points of a sweep, and α for a babysat run.

:class:`~panda.caviar.strategies.Strategy` answers *which* points come next; this
module adds *how promising* a Bayesian suggestion is (its expected improvement
under the same kind of Gaussian-process surrogate), and suggests a learning rate
from runs that already finished, by a GP on log10 α.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from panda.caviar.acquisition import expected_improvement
from panda.caviar.config import SweepConfig
from panda.caviar.space import LogUniform, Params, Space
from panda.caviar.strategies import (
    Bayesian,
    FloatArray,
    _fit_gp,
    _one_blas_thread,
    _predict,
)
from panda.caviar.trials import Direction, Trial

LR_MARGIN_DECADES = 1.0
"""How far beyond the α already tried a suggestion may go, in decades."""


@dataclass(frozen=True)
class Suggestion:
    """A point to try next, the round it belongs to, and its EI if modelled."""

    params: Params
    round: int = 0
    expected_improvement: float | None = None


def sweep_rng(config: SweepConfig, history: Sequence[Trial]) -> np.random.Generator:
    """Return the generator for the next suggestion: seeded by the config's seed
    and the history's length, so a restarted server suggests the same points.
    """
    return np.random.default_rng([config.seed, len(history)])


def suggest_next(
    config: SweepConfig, history: Sequence[Trial], n: int
) -> list[Suggestion]:
    """Return up to ``n`` points the sweep's strategy picks after ``history``.

    Bayesian suggestions carry the expected improvement the surrogate, fitted on
    the finished trials, gives them; other strategies' carry None.
    """
    strategy = config.make_strategy()
    rng = sweep_rng(config, history)
    round_index = strategy.round_for(history)
    points = strategy.suggest(history, n, rng)
    scores = _score(strategy, history, points, rng)
    return [
        Suggestion(point, round_index, score)
        for point, score in zip(points, scores, strict=True)
    ]


def _score(
    strategy: object,
    history: Sequence[Trial],
    points: Sequence[Params],
    rng: np.random.Generator,
) -> list[float | None]:
    finished = [trial for trial in history if trial.finished]
    succeeded = [trial for trial in finished if trial.succeeded]
    if not isinstance(strategy, Bayesian) or len(succeeded) < 2 or not points:
        return [None] * len(points)

    x = strategy.space.to_unit_many([trial.params for trial in finished])
    y = _impute_failures(finished, strategy.direction)
    candidates = strategy.space.to_unit_many(list(points))
    scores = _expected_improvement(
        x, y, candidates, strategy.direction, rng, xi=strategy.xi
    )
    return [float(score) for score in scores]


def _impute_failures(finished: Sequence[Trial], direction: Direction) -> FloatArray:
    """Give failed trials the worst finite objective, as the strategy does."""
    values = np.array([float(trial.objective or 0.0) for trial in finished])
    finite = np.isfinite(values)
    worst = values[finite].min() if direction == "maximize" else values[finite].max()
    return np.where(finite, values, worst)


def _expected_improvement(
    x: FloatArray,
    y: FloatArray,
    candidates: FloatArray,
    direction: Direction,
    rng: np.random.Generator,
    *,
    xi: float = 0.0,
) -> FloatArray:
    maximize = direction == "maximize"
    best = float(y.max() if maximize else y.min())
    with _one_blas_thread():
        model = _fit_gp(x, y, rng, restarts=1)
        mu, sigma = _predict(model, candidates)
    return expected_improvement(mu, sigma, best, maximize=maximize, xi=xi)


@dataclass(frozen=True)
class LrSuggestion:
    """An α to try, its expected improvement, and the best α seen so far."""

    lr: float
    expected_improvement: float
    best_lr: float
    best_objective: float


def suggest_lr(
    observations: Sequence[tuple[float, float]],
    *,
    direction: Direction = "minimize",
    seed: int = 0,
) -> LrSuggestion:
    """Suggest the next α from (α, objective) pairs of finished runs.

    A Gaussian process on log10 α (Matern 5/2 plus noise, as in
    :class:`~panda.caviar.strategies.Bayesian`) is fitted to the pairs; the
    suggestion maximises expected improvement over the best objective, within
    the α tried so far widened by :data:`LR_MARGIN_DECADES` on each side.
    Non-finite objectives (diverged runs) count as the worst finite one.

    Raises:
        ValueError: fewer than two runs with a finite objective, or an α <= 0.
    """
    pairs = [(float(lr), float(value)) for lr, value in observations]
    if any(not (lr > 0 and math.isfinite(lr)) for lr, _ in pairs):
        raise ValueError("every α must be a positive finite number")
    finite = [(lr, value) for lr, value in pairs if math.isfinite(value)]
    if len(finite) < 2:
        raise ValueError(
            f"need at least 2 finished runs with a finite objective, got {len(finite)}"
        )

    low = min(lr for lr, _ in pairs) / 10**LR_MARGIN_DECADES
    high = max(lr for lr, _ in pairs) * 10**LR_MARGIN_DECADES
    space = Space({"lr": LogUniform(low, high)})
    history = [Trial({"lr": lr}, value) for lr, value in pairs]
    strategy = Bayesian(space, initial=0, direction=direction)
    rng = np.random.default_rng(seed)
    point = strategy.suggest(history, 1, rng)[0]
    (score,) = _score(strategy, history, [point], rng)

    sign = 1.0 if direction == "minimize" else -1.0
    best_lr, best_value = min(finite, key=lambda pair: sign * pair[1])
    return LrSuggestion(float(point["lr"]), float(score or 0.0), best_lr, best_value)
