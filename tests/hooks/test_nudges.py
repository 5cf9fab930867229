"""Setting lr and momentum on a live optimizer, under every common scheduler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler

from panda.hooks.nudges import (
    NudgeRefused,
    check_nudge,
    read_lr,
    read_momentum,
    scale_lr,
    set_lr,
    set_momentum,
)
from tests.hooks.conftest import assert_close

Factory = Callable[[torch.optim.Optimizer], Any]

SCHEDULERS: dict[str, Factory] = {
    "step": lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "multistep": lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[4, 9, 13]),
    "exponential": lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9),
    "cosine": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=20),
    "onecycle": lambda opt: lr_scheduler.OneCycleLR(
        opt, max_lr=0.5, total_steps=40, cycle_momentum=False
    ),
    "lambda": lambda opt: lr_scheduler.LambdaLR(opt, lambda step: 1 / (1 + step)),
    "cyclic": lambda opt: lr_scheduler.CyclicLR(
        opt, base_lr=0.01, max_lr=0.1, step_size_up=5, cycle_momentum=False
    ),
    "warm_restarts": lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=6),
    "sequential": lambda opt: lr_scheduler.SequentialLR(
        opt,
        [
            lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5),
            lr_scheduler.ExponentialLR(opt, gamma=0.9),
        ],
        milestones=[5],
    ),
}


def _optimizer(lrs: tuple[float, ...] = (0.1,)) -> torch.optim.SGD:
    groups = [
        {"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr, "name": f"g{index}"}
        for index, lr in enumerate(lrs)
    ]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def _lr_trace(
    factory: Factory, *, nudge_at: int | None, value: float, steps: int = 30
) -> tuple[list[float], float]:
    """Return lr per step, and the ratio the nudge applied (1.0 without one)."""
    optimizer = _optimizer()
    scheduler = factory(optimizer)
    trace, ratio = [], 1.0
    for step in range(steps):
        if step == nudge_at:
            change = set_lr(optimizer, value, schedulers=[scheduler])
            ratio = change.factor or 1.0
        trace.append(read_lr(optimizer))
        optimizer.step()
        scheduler.step()
    return trace, ratio


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_set_lr_under_scheduler_keeps_its_later_shape(name: str) -> None:
    reference, _ = _lr_trace(SCHEDULERS[name], nudge_at=None, value=0.0)
    nudged, ratio = _lr_trace(SCHEDULERS[name], nudge_at=7, value=0.033)

    assert_close(nudged[7], 0.033)
    assert nudged[:7] == reference[:7]
    for step in range(7, len(reference)):
        assert_close(nudged[step], reference[step] * ratio)


def test_set_lr_under_reduce_on_plateau_keeps_the_reductions() -> None:
    traces = []
    for nudge in (False, True):
        optimizer = _optimizer()
        scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
        trace = []
        for step in range(20):
            if nudge and step == 3:
                set_lr(optimizer, 0.4, schedulers=[scheduler])
            trace.append(read_lr(optimizer))
            optimizer.step()
            scheduler.step(1.0)  # a flat loss: reduce every other epoch
        traces.append(trace)

    reference, nudged = traces
    ratio = 0.4 / reference[3]
    assert nudged[3] == pytest.approx(0.4)
    for step in range(3, 20):
        assert_close(nudged[step], reference[step] * ratio)
    assert nudged[-1] < nudged[3] / 8


def test_set_lr_under_reduce_on_plateau_leaves_floor_alone() -> None:
    optimizer = _optimizer()
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, min_lr=0.05)
    set_lr(optimizer, 0.2, schedulers=[scheduler])
    assert scheduler.min_lrs == [0.05]


def test_set_lr_under_cosine_leaves_eta_min_alone() -> None:
    optimizer = _optimizer()
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, eta_min=0.001)
    set_lr(optimizer, 0.2, schedulers=[scheduler])
    assert scheduler.eta_min == 0.001
    assert scheduler.get_last_lr() == [read_lr(optimizer)]


def test_set_lr_on_all_groups_scales_them_alike() -> None:
    optimizer = _optimizer((0.1, 0.01))
    change = set_lr(optimizer, 0.2, schedulers=[])
    assert change.factor == pytest.approx(2.0)
    assert_close(read_lr(optimizer, 0), 0.2)
    assert_close(read_lr(optimizer, 1), 0.02)


@pytest.mark.parametrize("group", [1, "g1"])
def test_set_lr_on_one_group_leaves_others(group: int | str) -> None:
    optimizer = _optimizer((0.1, 0.01))
    scheduler = lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    change = set_lr(optimizer, 0.05, schedulers=[scheduler], group=group)
    assert change.old_value == 0.01
    assert change.groups == (1,)
    assert read_lr(optimizer, 0) == 0.1
    assert_close(read_lr(optimizer, 1), 0.05)
    assert_close(scheduler.base_lrs[1], 0.05)
    assert scheduler.base_lrs[0] == 0.1


@pytest.mark.parametrize("group", [5, "missing"])
def test_set_lr_on_unknown_group_is_refused(group: int | str) -> None:
    with pytest.raises(NudgeRefused, match="group"):
        set_lr(_optimizer(), 0.05, group=group)


def test_set_lr_with_tensor_lr_fills_it_in_place() -> None:
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([param], lr=torch.tensor(0.01), foreach=False)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    lr_tensor = optimizer.param_groups[0]["lr"]
    set_lr(optimizer, 0.03, schedulers=[scheduler])
    assert optimizer.param_groups[0]["lr"] is lr_tensor
    assert float(lr_tensor) == pytest.approx(0.03)
    assert float(optimizer.param_groups[0]["initial_lr"]) == pytest.approx(0.03)
    assert float(scheduler.base_lrs[0]) == pytest.approx(0.03)


def test_scale_lr_replayed_on_same_state_is_bit_identical() -> None:
    first, second = _optimizer(), _optimizer()
    change = set_lr(first, 0.037)
    scale_lr(second, change.factor or 0.0)
    assert read_lr(first) == read_lr(second)


def test_set_momentum_on_sgd_sets_momentum() -> None:
    optimizer = _optimizer()
    change = set_momentum(optimizer, 0.5)
    assert change.old_value == 0.9
    assert read_momentum(optimizer) == 0.5


def test_set_momentum_on_sgd_from_zero_trains() -> None:
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.0)
    param.grad = torch.ones(2)
    optimizer.step()
    set_momentum(optimizer, 0.9)
    optimizer.step()
    optimizer.step()
    assert optimizer.state[param]["momentum_buffer"] is not None


def test_set_momentum_on_adam_sets_beta1() -> None:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], betas=(0.9, 0.99))
    change = set_momentum(optimizer, 0.8)
    assert change.old_value == 0.9
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99)


@pytest.mark.parametrize(
    "factory",
    [
        lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10),
        lambda opt: lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1),
    ],
    ids=["onecycle", "cyclic"],
)
def test_set_momentum_under_cycling_scheduler_is_refused(factory: Factory) -> None:
    optimizer = _optimizer()
    with pytest.raises(NudgeRefused, match="cycle_momentum"):
        set_momentum(optimizer, 0.5, schedulers=[factory(optimizer)])


def test_set_momentum_without_momentum_is_refused() -> None:
    optimizer = torch.optim.Adagrad([torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(NudgeRefused, match="no momentum"):
        set_momentum(optimizer, 0.5)


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("weight_decay", 0.1, "param must be"),
        ("lr", -1.0, "positive"),
        ("lr", float("nan"), "positive"),
        ("momentum", 1.0, r"\[0, 1\)"),
        ("lr", None, "no value"),
    ],
)
def test_check_nudge_with_bad_request_is_refused(
    param: str, value: float | None, match: str
) -> None:
    with pytest.raises(NudgeRefused, match=match):
        check_nudge(_optimizer(), param, value)


def test_check_nudge_when_lr_is_zero_is_refused() -> None:
    optimizer = _optimizer()
    scheduler = lr_scheduler.LambdaLR(optimizer, lambda step: min(step / 4, 1.0))
    with pytest.raises(NudgeRefused, match="cannot be scaled"):
        check_nudge(optimizer, "lr", 0.1, schedulers=[scheduler])


def test_check_nudge_with_ratio_beyond_float_is_refused() -> None:
    optimizer = _optimizer((1e-320,))
    with pytest.raises(NudgeRefused, match="too far"):
        check_nudge(optimizer, "lr", 1.0)
