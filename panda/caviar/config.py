"""Sweep configuration: what to search, how, and what counts as better.

A sweep file is TOML (or JSON with the same shape) with a ``[sweep]`` table of
settings and a ``[space]`` table of hyperparameters (format in
:mod:`panda.caviar.space`)::

    [sweep]
    name = "digits-lr"
    command = ["python", "train.py"]  # what each trial runs; a string is split
    strategy = "bayesian"       # grid | random | coarse_to_fine | bayesian
    trials = 40                 # trials in all
    parallel = 4                # trials running at once
    objective = "val_loss"      # the metric each trial is judged by
    direction = "minimize"      # or "maximize"
    summary = "last"            # the metric's last value, or "best" over the run
    seed = 0

    [sweep.options]             # keyword options of the strategy, e.g.
    initial = 8                 # bayesian: random points before the model
    # grid: points_per_dim; coarse_to_fine: trials_per_round, top_k, padding,
    # rounds; bayesian: initial, candidates, refine, restarts, xi

    [space]
    lr = { log_uniform = [1e-4, 1] }
    momentum = { one_minus_log_uniform = [0.9, 0.999] }
    hidden = { int = [32, 512], log = true }
    batch_size = { choice = [32, 64, 128] }

Every ``[sweep]`` key is optional; the defaults are shown by :class:`SweepConfig`.
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from panda.caviar.space import Space
from panda.caviar.strategies import Strategy, make_strategy
from panda.caviar.trials import Direction, check_direction

Summary = Literal["last", "best"]


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: its space, strategy and settings.

    Attributes:
        space: the hyperparameters to search.
        strategy: a name from :data:`panda.caviar.strategies.STRATEGIES`.
        options: keyword options of that strategy.
        trials: how many trials the sweep runs in all.
        parallel: how many trials run at once.
        objective: the metric a trial is judged by.
        direction: whether a smaller or a larger objective is better.
        summary: reduce the metric to its last value or its best one.
        seed: seeds the strategy's random generator.
        name: a label for the sweep, if any.
        command: the command each trial runs, if the config gives one.
    """

    space: Space
    strategy: str = "random"
    options: Mapping[str, Any] = field(default_factory=dict)
    trials: int = 20
    parallel: int = 1
    objective: str = "loss"
    direction: Direction = "minimize"
    summary: Summary = "last"
    seed: int = 0
    name: str | None = None
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in ("trials", "parallel"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"sweep.{key} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"sweep.seed must be an integer, got {self.seed!r}")
        if not isinstance(self.objective, str) or not self.objective:
            raise ValueError(f"sweep.objective must name a metric: {self.objective!r}")
        if self.summary not in ("last", "best"):
            raise ValueError(
                f"sweep.summary must be 'last' or 'best': {self.summary!r}"
            )
        if not isinstance(self.strategy, str):
            raise ValueError(f"sweep.strategy must be a name: {self.strategy!r}")
        check_direction(self.direction)
        self.make_strategy()

    def make_strategy(self) -> Strategy:
        """Build the configured strategy over the configured space."""
        return make_strategy(
            self.strategy, self.space, direction=self.direction, options=self.options
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready mapping that :func:`parse_sweep_config` reads back."""
        sweep: dict[str, Any] = {
            "strategy": self.strategy,
            "options": dict(self.options),
            "trials": self.trials,
            "parallel": self.parallel,
            "objective": self.objective,
            "direction": self.direction,
            "summary": self.summary,
            "seed": self.seed,
            "command": list(self.command),
        }
        if self.name is not None:
            sweep["name"] = self.name
        return {"sweep": sweep, "space": self.space.to_config()}


_SWEEP_KEYS = (
    "name",
    "command",
    "strategy",
    "options",
    "trials",
    "parallel",
    "objective",
    "direction",
    "summary",
    "seed",
)


def parse_sweep_config(data: Mapping[str, Any]) -> SweepConfig:
    """Validate a parsed sweep file (``{"sweep": {...}, "space": {...}}``).

    Raises:
        ValueError: naming the offending key and what it accepts.
    """
    unknown_tables = sorted(set(data) - {"sweep", "space"})
    if unknown_tables:
        raise ValueError(f"unknown tables {unknown_tables}; expected 'sweep', 'space'")
    if "space" not in data:
        raise ValueError("the sweep config has no [space] table of hyperparameters")
    settings = data.get("sweep", {})
    if not isinstance(settings, Mapping):
        raise ValueError(f"[sweep] must be a table, got {settings!r}")
    unknown = sorted(set(settings) - set(_SWEEP_KEYS))
    if unknown:
        raise ValueError(
            f"unknown [sweep] keys {unknown}; allowed: {list(_SWEEP_KEYS)}"
        )

    arguments = dict(settings)
    command = arguments.pop("command", ())
    if isinstance(command, str):
        command = shlex.split(command)
    if not isinstance(command, list | tuple) or not all(
        isinstance(part, str) for part in command
    ):
        raise ValueError(f"sweep.command must be a string or strings: {command!r}")
    options = arguments.pop("options", {})
    if not isinstance(options, Mapping):
        raise ValueError(f"[sweep.options] must be a table, got {options!r}")

    return SweepConfig(
        space=Space.from_config(data["space"]),
        command=tuple(command),
        options=dict(options),
        **arguments,
    )


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file, TOML (``.toml``) or JSON (``.json``).

    Raises:
        OSError: if the file cannot be read.
        ValueError: if it does not parse or does not validate; names the file.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = _parse_toml(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError("expected a .toml or .json file")
        if not isinstance(data, Mapping):
            raise ValueError("expected a table at the top level")
        return parse_sweep_config(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _parse_toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)
