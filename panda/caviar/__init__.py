"""caviar: train many models with different hyperparameters and keep the best.

This package holds the search core: search spaces sampled on the right scale
(:mod:`~panda.caviar.space`), the strategies that pick the next trials
(:mod:`~panda.caviar.strategies`), expected improvement
(:mod:`~panda.caviar.acquisition`) and sweep files (:mod:`~panda.caviar.config`).
Importing it needs only numpy; scipy and scikit-learn load when first used.
"""

from __future__ import annotations

from panda.caviar.acquisition import expected_improvement
from panda.caviar.config import SweepConfig, load_sweep_config, parse_sweep_config
from panda.caviar.space import (
    Choice,
    Dimension,
    IntUniform,
    LogUniform,
    OneMinusLogUniform,
    Params,
    ParamValue,
    Space,
    Uniform,
    parse_dimension,
)
from panda.caviar.strategies import (
    STRATEGIES,
    Bayesian,
    CoarseToFine,
    Grid,
    Random,
    Round,
    Strategy,
    make_strategy,
)
from panda.caviar.trials import Direction, Trial, best_trial, rank_trials

__all__ = [
    "STRATEGIES",
    "Bayesian",
    "Choice",
    "CoarseToFine",
    "Dimension",
    "Direction",
    "Grid",
    "IntUniform",
    "LogUniform",
    "OneMinusLogUniform",
    "ParamValue",
    "Params",
    "Random",
    "Round",
    "Space",
    "Strategy",
    "SweepConfig",
    "Trial",
    "Uniform",
    "best_trial",
    "expected_improvement",
    "load_sweep_config",
    "make_strategy",
    "parse_dimension",
    "parse_sweep_config",
    "rank_trials",
]
