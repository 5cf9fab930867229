"""Hyperparameter dimensions and the search space they make up.

Each dimension samples on the scale its hyperparameter needs and maps its values to
and from a *unit coordinate* in [0, 1]. The unit coordinate is linear in the warped
value: in log10 of alpha for :class:`LogUniform`, in log10 of 1 - beta for
:class:`OneMinusLogUniform`, so that equal steps in it are equal changes in what the
model feels. Bayesian optimisation and coarse-to-fine narrowing work in these
coordinates; sampling a uniform unit coordinate samples the dimension's distribution.

A space is written as a mapping from hyperparameter name to a one-key table naming
the distribution (JSON or a TOML ``[space]`` table, see :mod:`panda.caviar.config`)::

    {
        "lr": {"log_uniform": [1e-4, 1]},                  # alpha = 10^r, r in [-4, 0]
        "momentum": {"one_minus_log_uniform": [0.9, 0.999]},  # 1 - beta = 10^r
        "dropout": {"uniform": [0.0, 0.5]},
        "layers": {"int": [1, 4]},
        "hidden": {"int": [32, 512], "log": true},          # log-uniform integers
        "batch_size": {"choice": [32, 64, 128]},
        "epochs": 10,                                      # a constant
    }

Bounds are inclusive. A bare value is a constant (a one-option choice). Choices are
treated as ordered by Bayesian optimisation and coarse-to-fine search, so list them
in a meaningful order (batch sizes ascending).
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

ParamValue = float | int | str | bool
"""One hyperparameter's value, as a training script receives it."""

Params = dict[str, ParamValue]
"""One point of a space: hyperparameter name -> value."""

_MAX_GRID_POINTS = 1_000_000


class Dimension(ABC):
    """One hyperparameter: its range, sampling scale and unit coordinate."""

    @abstractmethod
    def to_unit(self, value: ParamValue) -> float:
        """Map a value of this dimension to its unit coordinate in [0, 1].

        Raises:
            ValueError: if the value is outside the dimension or of the wrong type.
        """

    @abstractmethod
    def from_unit(self, unit: float) -> ParamValue:
        """Map a unit coordinate (clipped to [0, 1]) to a value of this dimension."""

    @abstractmethod
    def validate(self, value: object) -> ParamValue:
        """Return ``value`` in canonical form, or raise ValueError naming the range."""

    @abstractmethod
    def grid(self, points: int) -> list[ParamValue]:
        """Return up to ``points`` values evenly spaced in unit coordinates."""

    @abstractmethod
    def narrow(self, low_unit: float, high_unit: float) -> Dimension:
        """Return the same kind of dimension restricted to a unit sub-interval."""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """Return the config table that :func:`parse_dimension` reads back."""

    def sample(self, rng: np.random.Generator, n: int) -> list[ParamValue]:
        """Draw ``n`` values from this dimension's distribution."""
        return [self.from_unit(float(unit)) for unit in rng.random(n)]


def _check_bounds(kind: str, low: float, high: float) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{kind} bounds must be finite numbers, got [{low}, {high}]")
    if not low < high:
        raise ValueError(f"{kind} needs low < high, got [{low}, {high}]")
    return low, high


def _unit_grid(points: int) -> npt.NDArray[np.float64]:
    if points < 1:
        raise ValueError(f"points per dimension must be at least 1, got {points}")
    if points == 1:
        return np.array([0.5])
    return np.linspace(0.0, 1.0, points)


def _check_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _clip_unit(unit: float) -> float:
    return min(max(float(unit), 0.0), 1.0)


@dataclass(frozen=True)
class _WarpedFloat(Dimension):
    """A float dimension that is uniform in some warp of its value."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = _check_bounds(type(self).__name__, self.low, self.high)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @abstractmethod
    def _warp(self, value: float) -> float: ...

    @abstractmethod
    def _unwarp(self, warped: float) -> float: ...

    def validate(self, value: object) -> float:
        number = _check_number(value)
        if not self.low <= number <= self.high:
            raise ValueError(
                f"{number!r} is outside {type(self).__name__}[{self.low}, {self.high}]"
            )
        return number

    def to_unit(self, value: ParamValue) -> float:
        number = self.validate(value)
        low, high = self._warp(self.low), self._warp(self.high)
        return _clip_unit((self._warp(number) - low) / (high - low))

    def from_unit(self, unit: float) -> float:
        low, high = self._warp(self.low), self._warp(self.high)
        value = self._unwarp(low + _clip_unit(unit) * (high - low))
        # Rounding in the warp can step a hair outside the bounds.
        return min(max(value, self.low), self.high)

    def grid(self, points: int) -> list[ParamValue]:
        return [self.from_unit(float(unit)) for unit in _unit_grid(points)]

    def narrow(self, low_unit: float, high_unit: float) -> Dimension:
        low, high = self.from_unit(low_unit), self.from_unit(high_unit)
        if not low < high:
            raise ValueError(f"cannot narrow {self} to an empty range [{low}, {high}]")
        return type(self)(low, high)


@dataclass(frozen=True)
class Uniform(_WarpedFloat):
    """A float drawn uniformly from [low, high] (dropout, weight of a loss term)."""

    def _warp(self, value: float) -> float:
        return value

    def _unwarp(self, warped: float) -> float:
        return warped

    def to_config(self) -> dict[str, Any]:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class LogUniform(_WarpedFloat):
    """A positive float with log10 of it uniform (learning rate: alpha = 10^r)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise ValueError(f"LogUniform needs low > 0, got [{self.low}, {self.high}]")

    def _warp(self, value: float) -> float:
        return math.log10(value)

    def _unwarp(self, warped: float) -> float:
        return float(10.0**warped)

    def to_config(self) -> dict[str, Any]:
        return {"log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class OneMinusLogUniform(_WarpedFloat):
    """A float below 1 with log10(1 - value) uniform (momentum, Adam's beta1 and beta2).

    Results are most sensitive near 1: beta = 0.9 averages over about 10 steps, 0.999
    over about 1000. Sampling 1 - beta = 10^r spends equal effort on each decade. The
    unit coordinate still grows with beta: 0 is ``low``, 1 is ``high``.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low < 0 or self.high >= 1:
            raise ValueError(
                "OneMinusLogUniform needs 0 <= low < high < 1, "
                f"got [{self.low}, {self.high}]"
            )

    def _warp(self, value: float) -> float:
        return -math.log10(1.0 - value)

    def _unwarp(self, warped: float) -> float:
        return float(1.0 - 10.0**-warped)

    def to_config(self) -> dict[str, Any]:
        return {"one_minus_log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class IntUniform(Dimension):
    """An integer in [low, high], uniform or, with ``log=True``, log-uniform.

    Each integer owns the cell [v - 0.5, v + 0.5] of the (log-)warped line, so a
    uniform unit coordinate gives every integer its fair share: equal shares when
    linear, shares falling like 1/v when log (hidden units: 32 to 512).
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for bound in (self.low, self.high):
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise ValueError(f"IntUniform bounds must be integers, got {bound!r}")
        if self.low > self.high:
            raise ValueError(
                f"IntUniform needs low <= high, got [{self.low}, {self.high}]"
            )
        if self.log and self.low < 1:
            raise ValueError(f"a log IntUniform needs low >= 1, got {self.low}")

    def _warp(self, value: float) -> float:
        return math.log(value) if self.log else value

    def _edges(self) -> tuple[float, float]:
        return self._warp(self.low - 0.5), self._warp(self.high + 0.5)

    def validate(self, value: object) -> int:
        number = _check_number(value)
        if not number.is_integer():
            raise ValueError(f"expected an integer, got {value!r}")
        if not self.low <= number <= self.high:
            raise ValueError(
                f"{value!r} is outside IntUniform[{self.low}, {self.high}]"
            )
        return int(number)

    def to_unit(self, value: ParamValue) -> float:
        low, high = self._edges()
        return _clip_unit((self._warp(self.validate(value)) - low) / (high - low))

    def from_unit(self, unit: float) -> int:
        low, high = self._edges()
        warped = low + _clip_unit(unit) * (high - low)
        value = math.exp(warped) if self.log else warped
        return min(max(math.floor(value + 0.5), self.low), self.high)

    def grid(self, points: int) -> list[ParamValue]:
        low, high = self._warp(self.low), self._warp(self.high)
        values = []
        for unit in _unit_grid(points):
            warped = low + float(unit) * (high - low)
            value = math.exp(warped) if self.log else warped
            values.append(min(max(math.floor(value + 0.5), self.low), self.high))
        return list(dict.fromkeys(values))

    def narrow(self, low_unit: float, high_unit: float) -> Dimension:
        return IntUniform(self.from_unit(low_unit), self.from_unit(high_unit), self.log)

    def to_config(self) -> dict[str, Any]:
        if self.log:
            return {"int": [self.low, self.high], "log": True}
        return {"int": [self.low, self.high]}


@dataclass(frozen=True)
class Choice(Dimension):
    """One of a fixed, ordered list of options (batch size, optimizer name).

    Option i owns the unit cell [i / k, (i + 1) / k), so the unit coordinate treats
    the options as ordered.
    """

    options: tuple[ParamValue, ...]

    def __post_init__(self) -> None:
        options = tuple(self.options)
        if not options:
            raise ValueError("Choice needs at least one option")
        for option in options:
            if not isinstance(option, int | float | str | bool):
                raise ValueError(
                    f"Choice options must be numbers or strings: {option!r}"
                )
        if len(set(options)) != len(options):
            raise ValueError(f"Choice options must be distinct, got {list(options)}")
        object.__setattr__(self, "options", options)

    def _index(self, value: object) -> int:
        for index, option in enumerate(self.options):
            if type(option) is type(value) and option == value:
                return index
        for index, option in enumerate(self.options):
            if option == value and not isinstance(value, bool | str):
                return index
        raise ValueError(f"{value!r} is not one of {list(self.options)}")

    def validate(self, value: object) -> ParamValue:
        return self.options[self._index(value)]

    def to_unit(self, value: ParamValue) -> float:
        return (self._index(value) + 0.5) / len(self.options)

    def from_unit(self, unit: float) -> ParamValue:
        index = min(int(_clip_unit(unit) * len(self.options)), len(self.options) - 1)
        return self.options[index]

    def grid(self, points: int) -> list[ParamValue]:
        _unit_grid(points)
        return list(self.options)

    def narrow(self, low_unit: float, high_unit: float) -> Dimension:
        first = self._index(self.from_unit(low_unit))
        last = self._index(self.from_unit(high_unit))
        return Choice(self.options[first : last + 1])

    def to_config(self) -> dict[str, Any]:
        return {"choice": list(self.options)}


def _two_numbers(name: str, key: str, bounds: object) -> tuple[Any, Any]:
    if (
        not isinstance(bounds, Sequence)
        or isinstance(bounds, str)
        or len(bounds) != 2
        or not all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
        )
    ):
        raise ValueError(
            f"{name}: {key} needs [low, high] as two numbers, got {bounds!r}"
        )
    return bounds[0], bounds[1]


_DIMENSION_KINDS = ("log_uniform", "one_minus_log_uniform", "uniform", "int", "choice")


def parse_dimension(name: str, config: object) -> Dimension:
    """Build a dimension from its config table (see the module docstring).

    Args:
        name: the hyperparameter's name, used in error messages.
        config: a one-key table such as ``{"log_uniform": [1e-4, 1]}``, or a bare
            number, string or boolean for a constant.

    Raises:
        ValueError: if the table names no known distribution or holds bad bounds.
    """
    if isinstance(config, int | float | str | bool):
        return Choice((config,))
    if not isinstance(config, Mapping):
        raise ValueError(f"{name}: expected a table like {{'uniform': [0, 1]}}")
    kinds = [key for key in config if key in _DIMENSION_KINDS]
    extra = set(config) - set(kinds) - ({"log"} if kinds == ["int"] else set())
    if len(kinds) != 1 or extra:
        raise ValueError(
            f"{name}: expected exactly one of {', '.join(_DIMENSION_KINDS)}"
            f" (plus 'log' for int), got keys {sorted(config)}"
        )
    kind, value = kinds[0], config[kinds[0]]
    try:
        if kind == "choice":
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise ValueError(f"choice needs a list of options, got {value!r}")
            return Choice(tuple(value))
        low, high = _two_numbers(name, kind, value)
        if kind == "int":
            log = config.get("log", False)
            if not isinstance(log, bool):
                raise ValueError(f"'log' must be true or false, got {log!r}")
            return IntUniform(low, high, log)
        classes: dict[str, Callable[[float, float], Dimension]] = {
            "log_uniform": LogUniform,
            "one_minus_log_uniform": OneMinusLogUniform,
            "uniform": Uniform,
        }
        return classes[kind](low, high)
    except ValueError as error:
        message = str(error)
        prefixed = message if message.startswith(name) else f"{name}: {message}"
        raise ValueError(prefixed) from None


class Space(Mapping[str, Dimension]):
    """An ordered mapping of hyperparameter names to dimensions.

    The order fixes the columns of unit-coordinate arrays.
    """

    def __init__(self, dimensions: Mapping[str, Dimension]) -> None:
        """Build a space; raise ValueError if it is empty or a value is no dimension."""
        if not dimensions:
            raise ValueError("a search space needs at least one hyperparameter")
        for name, dimension in dimensions.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"hyperparameter names must be strings, got {name!r}")
            if not isinstance(dimension, Dimension):
                raise ValueError(f"{name}: expected a Dimension, got {dimension!r}")
        self._dimensions = dict(dimensions)

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> Space:
        """Build a space from its config mapping (see the module docstring)."""
        if not isinstance(config, Mapping):
            raise ValueError(f"a space config must be a table, got {config!r}")
        return cls(
            {name: parse_dimension(name, table) for name, table in config.items()}
        )

    def to_config(self) -> dict[str, dict[str, Any]]:
        """Return the config mapping that :meth:`from_config` reads back."""
        return {name: dim.to_config() for name, dim in self._dimensions.items()}

    def __getitem__(self, name: str) -> Dimension:
        return self._dimensions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dimensions)

    def __len__(self) -> int:
        return len(self._dimensions)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return list(self._dimensions.items()) == list(other._dimensions.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Space({self._dimensions!r})"

    def validate(self, params: Mapping[str, object]) -> Params:
        """Return ``params`` in canonical form.

        Raises:
            ValueError: if a name is missing or unknown, or a value is out of range.
        """
        missing = [name for name in self._dimensions if name not in params]
        unknown = [name for name in params if name not in self._dimensions]
        if missing or unknown:
            raise ValueError(
                f"parameters do not match the space: missing {missing}, "
                f"unknown {unknown}"
            )
        checked: Params = {}
        for name, dimension in self._dimensions.items():
            try:
                checked[name] = dimension.validate(params[name])
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return checked

    def sample(self, rng: np.random.Generator, n: int) -> list[Params]:
        """Draw ``n`` independent points; every point gets a new value of each name."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        units = rng.random((n, len(self._dimensions)))
        return [self.from_unit(row) for row in units]

    def grid(self, points_per_dim: int | Mapping[str, int]) -> list[Params]:
        """Return the full product of each dimension's grid, in row-major order.

        Args:
            points_per_dim: grid points per dimension, or a mapping giving them per
                name (names left out get 1 point, the middle of their range). Choices
                always contribute all options; small integer ranges may give fewer.

        Raises:
            ValueError: if a count is below 1 or the product exceeds a million points.
        """
        axes = []
        for name, dimension in self._dimensions.items():
            if isinstance(points_per_dim, Mapping):
                points = points_per_dim.get(name, 1)
            else:
                points = points_per_dim
            axes.append(dimension.grid(points))
        size = math.prod(len(axis) for axis in axes)
        if size > _MAX_GRID_POINTS:
            raise ValueError(
                f"the grid has {size} points; use fewer points per dimension "
                "or random search"
            )
        names = list(self._dimensions)
        return [
            dict(zip(names, values, strict=True)) for values in itertools.product(*axes)
        ]

    def to_unit(self, params: Mapping[str, object]) -> npt.NDArray[np.float64]:
        """Map a point to its unit coordinates, one column per name in order."""
        checked = self.validate(params)
        return np.array([dim.to_unit(checked[name]) for name, dim in self.items()])

    def to_unit_many(
        self, points: Sequence[Mapping[str, object]]
    ) -> npt.NDArray[np.float64]:
        """Map points to an array of shape (len(points), len(self))."""
        array = np.empty((len(points), len(self._dimensions)))
        for row, params in enumerate(points):
            array[row] = self.to_unit(params)
        return array

    def from_unit(self, unit: Sequence[float] | npt.NDArray[np.float64]) -> Params:
        """Map unit coordinates (clipped to [0, 1]) back to a point of the space."""
        coordinates = np.asarray(unit, dtype=float).reshape(-1)
        if coordinates.shape != (len(self._dimensions),):
            raise ValueError(
                f"expected {len(self._dimensions)} unit coordinates, "
                f"got shape {np.shape(unit)}"
            )
        return {
            name: dim.from_unit(float(coordinate))
            for (name, dim), coordinate in zip(self.items(), coordinates, strict=True)
        }

    def narrow(self, box: npt.NDArray[np.float64]) -> Space:
        """Restrict each dimension to a unit interval; ``box`` has shape (d, 2)."""
        bounds = np.asarray(box, dtype=float)
        if bounds.shape != (len(self._dimensions), 2):
            raise ValueError(f"expected a ({len(self)}, 2) box, got {bounds.shape}")
        return Space(
            {
                name: dim.narrow(float(low), float(high))
                for (name, dim), (low, high) in zip(self.items(), bounds, strict=True)
            }
        )
