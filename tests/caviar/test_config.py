"""Tests for sweep files: TOML and JSON loading, validation, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panda.caviar.config import SweepConfig, load_sweep_config, parse_sweep_config
from panda.caviar.space import Choice, IntUniform, LogUniform, OneMinusLogUniform
from panda.caviar.strategies import Bayesian, CoarseToFine

SWEEP_TOML = """
[sweep]
name = "digits-lr"
command = "python train.py --epochs 3"
strategy = "coarse_to_fine"
trials = 40
parallel = 4
objective = "val_loss"
direction = "minimize"
seed = 7

[sweep.options]
trials_per_round = 10
top_k = 4

[space]
lr = { log_uniform = [1e-4, 1] }
momentum = { one_minus_log_uniform = [0.9, 0.999] }
hidden = { int = [32, 512], log = true }
batch_size = { choice = [32, 64, 128] }
"""


def test_load_sweep_config_toml_builds_space_and_strategy(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP_TOML, encoding="utf-8")

    config = load_sweep_config(path)

    assert config.name == "digits-lr"
    assert config.command == ("python", "train.py", "--epochs", "3")
    assert (config.trials, config.parallel, config.seed) == (40, 4, 7)
    assert (config.objective, config.direction, config.summary) == (
        "val_loss",
        "minimize",
        "last",
    )
    assert config.space["lr"] == LogUniform(1e-4, 1.0)
    assert config.space["momentum"] == OneMinusLogUniform(0.9, 0.999)
    assert config.space["hidden"] == IntUniform(32, 512, log=True)
    assert config.space["batch_size"] == Choice((32, 64, 128))
    strategy = config.make_strategy()
    assert isinstance(strategy, CoarseToFine)
    assert (strategy.trials_per_round, strategy.top_k) == (10, 4)


def test_load_sweep_config_json_round_trips_to_dict(tmp_path: Path) -> None:
    toml_path = tmp_path / "sweep.toml"
    toml_path.write_text(SWEEP_TOML, encoding="utf-8")
    config = load_sweep_config(toml_path)
    json_path = tmp_path / "sweep.json"
    json_path.write_text(json.dumps(config.to_dict()), encoding="utf-8")

    assert load_sweep_config(json_path) == config


def test_parse_sweep_config_space_only_uses_defaults() -> None:
    config = parse_sweep_config({"space": {"lr": {"log_uniform": [1e-4, 1]}}})

    assert config == SweepConfig(space=config.space)
    assert (config.strategy, config.trials, config.parallel) == ("random", 20, 1)


def test_sweep_config_bayesian_options_reach_strategy() -> None:
    config = parse_sweep_config(
        {
            "sweep": {"strategy": "bayesian", "options": {"initial": 8}},
            "space": {"lr": {"log_uniform": [1e-4, 1]}},
        }
    )

    strategy = config.make_strategy()

    assert isinstance(strategy, Bayesian)
    assert strategy.initial == 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sweep": {}}, r"no \[space\] table"),
        ({"space": {}, "sweeps": {}}, "unknown tables"),
        ({"space": {"lr": 1}, "sweep": {"trails": 3}}, r"unknown \[sweep\] keys"),
        ({"space": {"lr": 1}, "sweep": {"parallel": 0}}, "parallel must be"),
        ({"space": {"lr": 1}, "sweep": {"direction": "up"}}, "direction must be"),
        ({"space": {"lr": 1}, "sweep": {"summary": "mean"}}, "summary must be"),
        ({"space": {"lr": 1}, "sweep": {"command": [1]}}, "command must be"),
        ({"space": {"lr": {"log_uniform": [1, 0.1]}}}, "lr: LogUniform needs"),
        ({"space": {}}, "at least one hyperparameter"),
    ],
)
def test_parse_sweep_config_bad_input_raises_value_error(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sweep_config(data)


def test_load_sweep_config_bad_toml_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[space\nlr = 1", encoding="utf-8")

    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_sweep_config(path)


def test_load_sweep_config_unknown_suffix_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("space: {}", encoding="utf-8")

    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        load_sweep_config(path)
