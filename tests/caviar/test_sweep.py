"""The sweep runner's pure parts: narrowing around nudged values, trial argv, env."""

from __future__ import annotations

import sys

import pytest

from panda import config
from panda.caviar import LogUniform, OneMinusLogUniform, Space, SweepConfig, Uniform
from panda.caviar.sweep import narrow_around, trial_command


def _config() -> SweepConfig:
    space = Space(
        {
            "lr": LogUniform(1e-4, 1.0),
            "momentum": OneMinusLogUniform(0.5, 0.999),
            "dropout": Uniform(0.0, 0.5),
        }
    )
    return SweepConfig(space=space, command=("python", "train.py"))


def test_narrow_around_nudged_values_keeps_them_inside() -> None:
    narrowed = narrow_around(
        _config(), {"lr": [0.05, 0.01], "momentum": [0.9], "dropout": [0.1]}
    )

    lr = narrowed.space["lr"]
    momentum = narrowed.space["momentum"]
    assert isinstance(lr, LogUniform)
    assert (lr.low, lr.high) == pytest.approx((0.01 / 3, 0.15))
    assert isinstance(momentum, OneMinusLogUniform)
    assert (1 - momentum.high, 1 - momentum.low) == pytest.approx((0.1 / 3, 0.3))
    assert narrowed.space["dropout"] == Uniform(0.0, 0.5)


def test_narrow_around_with_bad_factor_raises() -> None:
    with pytest.raises(ValueError, match="factor"):
        narrow_around(_config(), {"lr": [0.1]}, factor=1.0)


def test_trial_command_runs_function_target_in_fresh_python() -> None:
    assert trial_command(["examples.train:main"]) == [
        sys.executable,
        "-m",
        "panda.caviar.sweep",
        "examples.train:main",
    ]
    assert trial_command(["python", "train.py"]) == ["python", "train.py"]


def test_sweep_trial_env_reads_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDA_SWEEP", "3")
    monkeypatch.setenv("PANDA_TRIAL", "7")
    monkeypatch.setenv("PANDA_PARAMS", '{"lr": 0.01}')

    found = config.sweep_trial()

    assert found == config.SweepTrialEnv(3, 7, {"lr": 0.01})


def test_sweep_trial_env_malformed_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDA_SWEEP", "3")
    monkeypatch.setenv("PANDA_TRIAL", "7")
    monkeypatch.setenv("PANDA_PARAMS", "[1]")

    with pytest.raises(ValueError, match="JSON object"):
        config.sweep_trial()
