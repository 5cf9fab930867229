"""Tests for dimensions and spaces: sampling scales, unit coordinates, grids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped, unused-ignore]

from panda.caviar.space import (
    Choice,
    IntUniform,
    LogUniform,
    OneMinusLogUniform,
    Space,
    Uniform,
    parse_dimension,
)

DRAWS = 10_000


def _log_uniformity_p(values: list[float], low: float, high: float) -> float:
    """Return the KS p-value of log10(values) against uniform on [low, high]."""
    result = stats.kstest(
        np.log10(values), stats.uniform(loc=low, scale=high - low).cdf
    )
    return float(result.pvalue)


def test_space_sample_lr_log10_is_uniform_over_range() -> None:
    space = Space({"lr": LogUniform(1e-4, 1.0)})

    draws = [float(p["lr"]) for p in space.sample(np.random.default_rng(0), DRAWS)]

    assert min(draws) >= 1e-4
    assert max(draws) <= 1.0
    assert _log_uniformity_p(draws, -4.0, 0.0) > 0.01


def test_space_sample_momentum_log10_one_minus_is_uniform() -> None:
    space = Space({"momentum": OneMinusLogUniform(0.9, 0.999)})

    draws = [
        float(p["momentum"]) for p in space.sample(np.random.default_rng(1), DRAWS)
    ]

    assert 0.9 <= min(draws) <= max(draws) <= 0.999
    assert _log_uniformity_p([1 - beta for beta in draws], -3.0, -1.0) > 0.01


@pytest.mark.parametrize(
    ("dimension", "transform", "low", "high"),
    [
        (Uniform(1e-4, 1.0), lambda v: v, -4.0, 0.0),
        (Uniform(0.9, 0.999), lambda v: 1 - v, -3.0, -1.0),
    ],
    ids=["lr", "momentum"],
)
def test_uniform_sample_on_log_scale_fails_uniformity_check(
    dimension: Uniform, transform: object, low: float, high: float
) -> None:
    draws = dimension.sample(np.random.default_rng(0), DRAWS)
    values = [transform(float(v)) for v in draws]  # type: ignore[operator]

    # The check above must be able to fail: a linear draw crowds the top decade.
    assert _log_uniformity_p(values, low, high) < 1e-6


def test_int_uniform_log_sample_gives_each_octave_equal_share() -> None:
    draws = np.array(
        IntUniform(32, 512, log=True).sample(np.random.default_rng(2), DRAWS)
    )

    below_geometric_middle = float(np.mean(draws <= 128))

    assert draws.dtype.kind == "i"
    assert set(draws.tolist()) <= set(range(32, 513))
    assert below_geometric_middle == pytest.approx(0.5, abs=0.03)


def test_int_uniform_linear_sample_hits_every_value_evenly() -> None:
    draws = IntUniform(1, 4).sample(np.random.default_rng(3), DRAWS)

    counts = np.bincount(np.array(draws))[1:]

    assert counts.tolist() == pytest.approx([DRAWS / 4] * 4, rel=0.1)


@pytest.mark.parametrize(
    ("dimension", "value", "unit"),
    [
        (LogUniform(1e-4, 1.0), 1e-2, 0.5),
        (OneMinusLogUniform(0.9, 0.999), 0.99, 0.5),
        (Uniform(0.0, 0.5), 0.125, 0.25),
        (Choice((32, 64, 128)), 64, 0.5),
    ],
)
def test_dimension_to_unit_known_value_is_warped_position(
    dimension: LogUniform, value: float, unit: float
) -> None:
    assert dimension.to_unit(value) == pytest.approx(unit)
    assert dimension.from_unit(unit) == pytest.approx(value)


@pytest.mark.parametrize(
    "dimension",
    [
        LogUniform(1e-5, 10.0),
        OneMinusLogUniform(0.0, 0.9999),
        Uniform(-3.0, 2.0),
        IntUniform(32, 512, log=True),
        IntUniform(-3, 7),
        Choice(("sgd", "adam", "adamw")),
    ],
)
def test_dimension_unit_round_trip_returns_same_value(dimension: LogUniform) -> None:
    for value in dimension.sample(np.random.default_rng(4), 200):
        unit = dimension.to_unit(value)
        assert 0.0 <= unit <= 1.0
        assert dimension.from_unit(unit) == pytest.approx(value)


def test_dimension_from_unit_outside_interval_clips_to_bounds() -> None:
    dimension = OneMinusLogUniform(0.9, 0.999)

    assert dimension.from_unit(-0.5) == 0.9
    assert dimension.from_unit(1.5) == 0.999


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: LogUniform(0.0, 1.0), "low > 0"),
        (lambda: LogUniform(1.0, 1e-4), "low < high"),
        (lambda: OneMinusLogUniform(0.9, 1.0), "high < 1"),
        (lambda: Uniform(0.0, float("nan")), "finite"),
        (lambda: IntUniform(0, 10, log=True), "low >= 1"),
        (lambda: IntUniform(1.5, 3), "integers"),  # type: ignore[arg-type]
        (lambda: Choice(()), "at least one"),
        (lambda: Choice((1, 1)), "distinct"),
    ],
)
def test_dimension_bad_bounds_raise_value_error(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()  # type: ignore[operator]


def test_space_validate_out_of_range_names_parameter() -> None:
    space = Space({"lr": LogUniform(1e-4, 1.0), "batch_size": Choice((32, 64))})

    with pytest.raises(ValueError, match=r"lr: 2\.0 is outside LogUniform"):
        space.validate({"lr": 2.0, "batch_size": 32})
    with pytest.raises(ValueError, match=r"missing \['batch_size'\]"):
        space.validate({"lr": 0.1})
    with pytest.raises(ValueError, match="not one of"):
        space.validate({"lr": 0.1, "batch_size": 48})


def test_space_grid_covers_full_product() -> None:
    space = Space(
        {
            "lr": LogUniform(1e-4, 1.0),
            "momentum": OneMinusLogUniform(0.9, 0.999),
            "hidden": IntUniform(32, 512, log=True),
            "batch_size": Choice((32, 64, 128)),
        }
    )

    grid = space.grid(3)

    keys = [tuple(point.values()) for point in grid]
    assert len(grid) == 3**4
    assert len(set(keys)) == len(keys)
    axes = [dimension.grid(3) for dimension in space.values()]
    assert set(keys) == set(itertools.product(*axes))
    assert axes[0] == pytest.approx([1e-4, 1e-2, 1.0])
    assert axes[1] == pytest.approx([0.9, 0.99, 0.999])
    assert axes[2] == [32, 128, 512]


def test_space_grid_per_name_counts_uses_middle_for_missing() -> None:
    space = Space({"lr": LogUniform(1e-4, 1.0), "dropout": Uniform(0.0, 0.5)})

    grid = space.grid({"lr": 5})

    assert len(grid) == 5
    assert {point["dropout"] for point in grid} == {0.25}


def test_space_grid_too_many_points_raises_value_error() -> None:
    space = Space({f"x{i}": Uniform(0.0, 1.0) for i in range(7)})

    with pytest.raises(ValueError, match="random search"):
        space.grid(10)


def test_space_from_config_example_builds_right_dimensions() -> None:
    config = {
        "lr": {"log_uniform": [1e-4, 1]},
        "momentum": {"one_minus_log_uniform": [0.9, 0.999]},
        "hidden": {"int": [32, 512], "log": True},
        "batch_size": {"choice": [32, 64, 128]},
        "epochs": 10,
    }

    space = Space.from_config(config)

    assert list(space) == ["lr", "momentum", "hidden", "batch_size", "epochs"]
    assert space["lr"] == LogUniform(1e-4, 1.0)
    assert space["momentum"] == OneMinusLogUniform(0.9, 0.999)
    assert space["hidden"] == IntUniform(32, 512, log=True)
    assert space["batch_size"] == Choice((32, 64, 128))
    assert space["epochs"] == Choice((10,))
    assert Space.from_config(space.to_config()) == space


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"normal": [0, 1]}, "expected exactly one of"),
        ({"uniform": [0, 1], "log_uniform": [1, 2]}, "expected exactly one of"),
        ({"uniform": [1]}, "two numbers"),
        ({"int": [1, 8], "log": "yes"}, "true or false"),
        ({"choice": "abc"}, "list of options"),
        ({"log_uniform": [-1, 1]}, "low > 0"),
    ],
)
def test_parse_dimension_bad_config_raises_with_name(
    config: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_dimension("lr", config)

    assert str(raised.value).startswith("lr: ")


def test_space_narrow_box_restricts_each_dimension() -> None:
    space = Space({"lr": LogUniform(1e-4, 1.0), "batch_size": Choice((32, 64, 128))})

    narrowed = space.narrow(np.array([[0.25, 0.75], [0.4, 0.9]]))

    lr = narrowed["lr"]
    assert isinstance(lr, LogUniform)
    assert (lr.low, lr.high) == pytest.approx((1e-3, 1e-1))
    assert narrowed["batch_size"] == Choice((64, 128))
