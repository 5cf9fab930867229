"""Search strategies: which hyperparameters the next trials of a sweep try.

Every strategy answers one question, ``suggest(history, n, rng)``: given the trials
so far (finished or still running), propose up to ``n`` new points. A strategy keeps
no state between calls: everything it knows comes from ``history`` and its
constructor, so a sweep runner, a REST endpoint or a restarted process get the same
answers from the same history and random generator.

- :class:`Grid` walks the product of per-dimension grids (a baseline: each trial
  repeats most values of the one before).
- :class:`Random` samples every hyperparameter anew on its own scale.
- :class:`CoarseToFine` samples in rounds, narrowing each range around the best
  trials after every round.
- :class:`Bayesian` fits a Gaussian process to the finished trials and picks the
  point of highest expected improvement.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from panda.caviar.acquisition import expected_improvement
from panda.caviar.space import Params, Space
from panda.caviar.trials import Direction, Trial, check_direction, rank_trials

FloatArray = npt.NDArray[np.float64]

_REFINE_POINTS = 64


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class Strategy(ABC):
    """Proposes the hyperparameters of the next trials from the trials so far."""

    def __init__(self, space: Space, *, direction: Direction = "minimize") -> None:
        """Set the space to search and whether the objective is minimised."""
        if not isinstance(space, Space):
            raise ValueError(f"expected a Space, got {space!r}")
        self.space = space
        self.direction = check_direction(direction)

    @abstractmethod
    def suggest(
        self, history: Sequence[Trial], n: int, rng: np.random.Generator
    ) -> list[Params]:
        """Return up to ``n`` new points to try.

        Fewer than ``n`` (even none) means the strategy has nothing to add now:
        a grid is exhausted, or a coarse-to-fine round waits for its running trials.

        Args:
            history: every trial of the sweep so far, running ones included.
            n: how many points the caller can start now.
            rng: the only source of randomness; the same generator state and
                history give the same points.
        """

    def round_for(self, history: Sequence[Trial]) -> int:
        """Return the round that points suggested now belong to (0 unless rounds)."""
        return 0


class Grid(Strategy):
    """Every combination of ``points_per_dim`` values per dimension, in order."""

    def __init__(
        self,
        space: Space,
        *,
        points_per_dim: int | Mapping[str, int] = 3,
        direction: Direction = "minimize",
    ) -> None:
        """Build the grid at once, so a too-large one fails before the sweep starts."""
        super().__init__(space, direction=direction)
        self.points = space.grid(points_per_dim)

    def suggest(
        self, history: Sequence[Trial], n: int, rng: np.random.Generator
    ) -> list[Params]:
        _check_count("n", n, 0)
        tried = {_point_key(self.space, trial.params) for trial in history}
        fresh = [p for p in self.points if _point_key(self.space, p) not in tried]
        return fresh[:n]


def _point_key(space: Space, params: Mapping[str, object]) -> tuple[object, ...]:
    checked = space.validate(params)
    return tuple(checked[name] for name in space)


class Random(Strategy):
    """Independent draws from each dimension's distribution."""

    def suggest(
        self, history: Sequence[Trial], n: int, rng: np.random.Generator
    ) -> list[Params]:
        _check_count("n", n, 0)
        return self.space.sample(rng, n)


@dataclass(frozen=True)
class Round:
    """One coarse-to-fine round: the ranges its trials were drawn from.

    Attributes:
        index: 0 for the first, full-range round.
        space: the narrowed space the round samples.
        box: the round's ranges as unit intervals of the full space, shape (d, 2).
    """

    index: int
    space: Space
    box: FloatArray


class CoarseToFine(Strategy):
    """Random search in rounds, each narrowed around the best trials so far.

    Round 0 samples the full space. When a round has ``trials_per_round`` trials and
    all have finished, the next round's range along each dimension is the span, in
    unit coordinates, of the ``top_k`` best trials so far, padded on each side by
    ``padding`` times the width of the round just done, clipped to the full range.
    Ranges therefore always contain the best trials, and shrink geometrically only
    while the best trials agree.
    """

    def __init__(
        self,
        space: Space,
        *,
        trials_per_round: int = 10,
        top_k: int = 3,
        padding: float = 0.1,
        rounds: int | None = None,
        direction: Direction = "minimize",
    ) -> None:
        """Set the round size, how many trials shape the next round, and padding.

        Args:
            space: the full search space.
            trials_per_round: trials in each round.
            top_k: how many best trials the next round's ranges must contain.
            padding: extra width on each side, as a fraction of the last round's.
            rounds: stop suggesting after this many rounds; None for no limit.
            direction: whether the objective is minimised or maximised.
        """
        super().__init__(space, direction=direction)
        self.trials_per_round = _check_count("trials_per_round", trials_per_round, 1)
        self.top_k = _check_count("top_k", top_k, 1)
        if not 0 < padding <= 1:
            raise ValueError(f"padding must be in (0, 1], got {padding!r}")
        self.padding = float(padding)
        self.max_rounds = None if rounds is None else _check_count("rounds", rounds, 1)

    def rounds(self, history: Sequence[Trial]) -> list[Round]:
        """Return the rounds so far, including the one new points would join."""
        full = np.tile([0.0, 1.0], (len(self.space), 1))
        rounds = [Round(0, self.space, full)]
        last_index = max((trial.round for trial in history), default=0)
        while True:
            current = rounds[-1]
            members = [t for t in history if t.round == current.index]
            complete = len(members) >= self.trials_per_round and all(
                t.finished for t in members
            )
            if current.index >= last_index and not complete:
                return rounds
            if self.max_rounds is not None and len(rounds) >= self.max_rounds:
                return rounds
            earlier = [t for t in history if t.round <= current.index]
            box = self._next_box(earlier, current.box)
            rounds.append(Round(current.index + 1, self.space.narrow(box), box))

    def _next_box(self, trials: Sequence[Trial], box: FloatArray) -> FloatArray:
        best = rank_trials(trials, self.direction)[: self.top_k]
        if not best:
            return box
        units = self.space.to_unit_many([trial.params for trial in best])
        pad = self.padding * (box[:, 1] - box[:, 0])
        low = np.clip(units.min(axis=0) - pad, 0.0, 1.0)
        high = np.clip(units.max(axis=0) + pad, 0.0, 1.0)
        return np.stack([low, high], axis=1)

    def round_for(self, history: Sequence[Trial]) -> int:
        return self.rounds(history)[-1].index

    def suggest(
        self, history: Sequence[Trial], n: int, rng: np.random.Generator
    ) -> list[Params]:
        _check_count("n", n, 0)
        current = self.rounds(history)[-1]
        taken = sum(1 for trial in history if trial.round == current.index)
        free = max(self.trials_per_round - taken, 0)
        return current.space.sample(rng, min(n, free))


class Bayesian(Strategy):
    """Gaussian-process Bayesian optimisation with expected improvement.

    The surrogate is scikit-learn's ``GaussianProcessRegressor`` with a Matern 5/2
    kernel (one length scale per dimension) plus a white-noise kernel, with
    ``normalize_y``, fitted in unit coordinates. The next point maximises expected
    improvement over ``candidates`` random points (a tenth of them near the best
    trial), then searches locally around the ``refine`` best in shrinking steps.
    The first ``initial`` points are random. Failed trials (NaN or inf objective)
    count as the worst finished value, so the surrogate learns to avoid their
    region. Running trials,
    and points already chosen in the same call, are fitted as if they had scored
    that worst value too (a "constant liar"), which spreads a parallel batch out.

    Limitations:
        Integer and choice dimensions are optimised as continuous and rounded.
        scikit-learn is imported on the first model-based suggestion.
    """

    def __init__(
        self,
        space: Space,
        *,
        initial: int = 5,
        candidates: int = 2000,
        refine: int = 3,
        restarts: int = 2,
        xi: float = 0.0,
        direction: Direction = "minimize",
    ) -> None:
        """Set the random start and the effort spent per suggestion.

        Args:
            space: the search space.
            initial: how many points are random before the surrogate takes over.
            candidates: random candidates EI is evaluated on per suggestion.
            refine: how many of the best candidates are refined locally.
            restarts: extra random restarts of the kernel hyperparameter fit.
            xi: improvement margin for EI, in objective units; > 0 explores more.
            direction: whether the objective is minimised or maximised.
        """
        super().__init__(space, direction=direction)
        self.initial = _check_count("initial", initial, 0)
        self.candidates = _check_count("candidates", candidates, 1)
        self.refine = _check_count("refine", refine, 0)
        self.restarts = _check_count("restarts", restarts, 0)
        if not xi >= 0:
            raise ValueError(f"xi must be >= 0, got {xi!r}")
        self.xi = float(xi)

    def suggest(
        self, history: Sequence[Trial], n: int, rng: np.random.Generator
    ) -> list[Params]:
        _check_count("n", n, 0)
        succeeded = [trial for trial in history if trial.succeeded]
        random_count = max(0, min(n, self.initial - len(history)))
        if len(succeeded) < 2:
            random_count = n
        points = self.space.sample(rng, random_count)
        if random_count == n:
            return points

        finished = [trial for trial in history if trial.finished]
        observed_x = self.space.to_unit_many([trial.params for trial in finished])
        observed_y = self._impute_failures(finished)
        running = [trial.params for trial in history if not trial.finished]
        pending_x = self.space.to_unit_many([*running, *points])
        best = observed_y.max() if self.direction == "maximize" else observed_y.min()
        liar = observed_y.min() if self.direction == "maximize" else observed_y.max()

        # The matrices are tiny: extra BLAS threads only add overhead and compete
        # with the trials training on the same machine.
        with _one_blas_thread():
            model = _fit_gp(observed_x, observed_y, rng, restarts=self.restarts)
            for _ in range(n - random_count):
                if len(pending_x):
                    fake_y = np.full(len(pending_x), liar)
                    model = _refit_gp(
                        model,
                        np.vstack([observed_x, pending_x]),
                        np.concatenate([observed_y, fake_y]),
                    )
                best_x = observed_x[int(np.argmin(np.abs(observed_y - best)))]
                unit = self._maximize_ei(model, float(best), best_x, rng)
                point = self.space.from_unit(unit)
                points.append(point)
                pending_x = np.vstack([pending_x, self.space.to_unit(point)])
        return points

    def _impute_failures(self, finished: Sequence[Trial]) -> FloatArray:
        values = np.array([float(trial.objective or 0.0) for trial in finished])
        finite = np.isfinite(values)
        if self.direction == "maximize":
            worst = values[finite].min()
        else:
            worst = values[finite].max()
        return np.where(finite, values, worst)

    def _maximize_ei(
        self, model: Any, best: float, best_x: FloatArray, rng: np.random.Generator
    ) -> FloatArray:
        dims = len(self.space)
        maximize = self.direction == "maximize"

        def acquisition(x: FloatArray) -> FloatArray:
            mu, sigma = _predict(model, x)
            return expected_improvement(mu, sigma, best, maximize=maximize, xi=self.xi)

        near = max(self.candidates // 10, 1)
        spread = best_x + 0.05 * rng.standard_normal((near, dims))
        candidates = np.vstack([rng.random((self.candidates, dims)), spread])
        candidates = np.clip(candidates, 0.0, 1.0)
        scores = acquisition(candidates)

        # Local refinement: shrinking Gaussian clouds around the best candidates,
        # one batched prediction per step, instead of a gradient optimiser that
        # would call the model once per point.
        for scale in (0.03, 0.01, 0.003):
            if self.refine == 0:
                break
            top = candidates[np.argsort(scores)[::-1][: self.refine]]
            steps = scale * rng.standard_normal((self.refine, _REFINE_POINTS, dims))
            cloud = np.clip(top[:, None, :] + steps, 0.0, 1.0).reshape(-1, dims)
            candidates = np.vstack([top, cloud])
            scores = acquisition(candidates)
        return np.asarray(candidates[int(np.argmax(scores))], dtype=float)


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    # threadpoolctl comes with scikit-learn.
    from threadpoolctl import (  # type: ignore[import-untyped, unused-ignore]
        threadpool_limits,
    )

    limits: contextlib.AbstractContextManager[object]
    limits = threadpool_limits(limits=1, user_api="blas")
    return limits


def _fit_gp(
    x: FloatArray, y: FloatArray, rng: np.random.Generator, *, restarts: int
) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    dims = x.shape[1]
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=np.full(dims, 0.3), length_scale_bounds=(1e-2, 1e2), nu=2.5
    ) + WhiteKernel(1e-3, (1e-6, 1.0))
    model = GaussianProcessRegressor(
        kernel=kernel,
        normalize_y=True,
        n_restarts_optimizer=restarts,
        random_state=int(rng.integers(2**31 - 1)),
    )
    with warnings.catch_warnings():
        # Length scales at their bounds are normal with few trials.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def _refit_gp(model: Any, x: FloatArray, y: FloatArray) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor

    refit = GaussianProcessRegressor(
        kernel=model.kernel_, normalize_y=True, optimizer=None
    )
    return refit.fit(x, y)


def _predict(model: Any, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Predicted variances smaller than 0")
        mu, sigma = model.predict(x, return_std=True)
    return np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)


STRATEGIES: dict[str, type[Strategy]] = {
    "grid": Grid,
    "random": Random,
    "coarse_to_fine": CoarseToFine,
    "bayesian": Bayesian,
}


def make_strategy(
    name: str,
    space: Space,
    *,
    direction: Direction = "minimize",
    options: Mapping[str, object] | None = None,
) -> Strategy:
    """Build a strategy by its config name ('grid', 'random', ...).

    Args:
        name: a key of :data:`STRATEGIES`.
        space: the search space.
        direction: whether the objective is minimised or maximised.
        options: keyword arguments of the strategy's constructor.

    Raises:
        ValueError: for an unknown name or option, or a bad option value.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    cls = STRATEGIES[name]
    options = dict(options or {})
    allowed = [
        parameter
        for parameter in inspect.signature(cls.__init__).parameters
        if parameter not in ("self", "space", "direction")
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"strategy {name!r} takes options {allowed}, got {unknown}")
    try:
        return cls(space, direction=direction, **options)
    except TypeError as error:
        raise ValueError(f"strategy {name!r}: bad option value ({error})") from None
