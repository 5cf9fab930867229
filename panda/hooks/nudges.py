"""Change a running optimizer's learning rate or momentum so schedulers keep it.

The learning rate follows one rule that preserves every scheduler's shape: with
``r = new / current`` (``current`` read from the first targeted param group),
multiply each targeted group's ``lr``, ``initial_lr``, ``max_lr`` and ``min_lr``,
and the schedulers' ``base_lrs`` (and CyclicLR's ``max_lrs``), by ``r``, then
refresh the schedulers' ``_last_lr``. Floors (``eta_min``, ``min_lrs``) stay. A
resume replays a nudge with its recorded ``r``, which makes the replay exact.

Momentum is set, not scaled: SGD and RMSprop keep it in ``momentum``, Adam-style
optimizers in ``betas[0]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CyclicLR, LRScheduler, OneCycleLR

Scheduler: TypeAlias = LRScheduler
"""Any torch scheduler; ReduceLROnPlateau is one too since torch 2.2."""

LR_GROUP_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


class NudgeRefused(Exception):
    """The optimizer cannot take this nudge; the message says why."""


@dataclass(frozen=True)
class NudgeChange:
    """What a nudge did, as reported to the server."""

    old_value: float
    new_value: float
    factor: float | None
    groups: tuple[int, ...]


def select_groups(optimizer: Optimizer, group: int | str | None) -> list[int]:
    """Return the indices of the param groups ``group`` names.

    Args:
        group: None for every group, an index, or the value of a group's
            ``"name"`` key.

    Raises:
        NudgeRefused: no group matches.
    """
    count = len(optimizer.param_groups)
    if group is None:
        return list(range(count))
    if isinstance(group, int):
        if not 0 <= group < count:
            raise NudgeRefused(f"param group {group} does not exist ({count} groups)")
        return [group]

    matches = [
        index
        for index, param_group in enumerate(optimizer.param_groups)
        if param_group.get("name") == group
    ]
    if not matches:
        names = [param_group.get("name") for param_group in optimizer.param_groups]
        raise NudgeRefused(f"no param group is named {group!r}; names are {names}")
    return matches


def read_lr(optimizer: Optimizer, group: int = 0) -> float:
    """Return the learning rate of one param group as a float."""
    return _as_float(optimizer.param_groups[group]["lr"])


def read_momentum(optimizer: Optimizer, group: int = 0) -> float | None:
    """Return a group's momentum (Adam's beta1), or None if it has none."""
    param_group = optimizer.param_groups[group]
    if "betas" in param_group:
        return _as_float(param_group["betas"][0])
    if "momentum" in param_group:
        return _as_float(param_group["momentum"])
    return None


def check_nudge(
    optimizer: Optimizer,
    param: str | None,
    value: float | None,
    *,
    schedulers: Sequence[Scheduler] = (),
    group: int | str | None = None,
) -> None:
    """Raise :class:`NudgeRefused` if the nudge cannot be applied; change nothing."""
    if value is None:
        raise NudgeRefused("the nudge carries no value")
    if param == "lr":
        _check_lr(optimizer, value, group)
    elif param == "momentum":
        _check_momentum(optimizer, value, schedulers, group)
    else:
        raise NudgeRefused(f"param must be 'lr' or 'momentum', got {param!r}")


def set_lr(
    optimizer: Optimizer,
    value: float,
    *,
    schedulers: Sequence[Scheduler] = (),
    group: int | str | None = None,
) -> NudgeChange:
    """Set the learning rate to ``value`` in the way schedulers keep.

    ``r = value / lr`` of the first targeted group; every targeted group is
    scaled by the same ``r``, so groups keep their ratios.

    Raises:
        NudgeRefused: ``value`` is not a positive finite number, the group does
            not exist, or the current learning rate is 0 (no ratio exists).
    """
    groups = _check_lr(optimizer, value, group)
    current = read_lr(optimizer, groups[0])
    return scale_lr(optimizer, value / current, schedulers=schedulers, group=group)


def scale_lr(
    optimizer: Optimizer,
    factor: float,
    *,
    schedulers: Sequence[Scheduler] = (),
    group: int | str | None = None,
) -> NudgeChange:
    """Multiply the learning rate and every value a scheduler derives it from.

    This is how a nudge is applied and how a resume replays one.
    """
    if not math.isfinite(factor) or factor <= 0:
        raise NudgeRefused(f"lr factor must be positive and finite, got {factor}")
    groups = select_groups(optimizer, group)
    old_value = read_lr(optimizer, groups[0])
    scaled: set[int] = set()

    for index in groups:
        param_group = optimizer.param_groups[index]
        for key in LR_GROUP_KEYS:
            if key in param_group:
                param_group[key] = _scaled(param_group[key], factor, scaled)
    for scheduler in _flatten(schedulers):
        _scale_scheduler(scheduler, groups, factor, scaled)

    return NudgeChange(
        old_value=old_value,
        new_value=read_lr(optimizer, groups[0]),
        factor=factor,
        groups=tuple(groups),
    )


def set_momentum(
    optimizer: Optimizer,
    value: float,
    *,
    schedulers: Sequence[Scheduler] = (),
    group: int | str | None = None,
) -> NudgeChange:
    """Set momentum (Adam's beta1) of the targeted groups to ``value``.

    Raises:
        NudgeRefused: the value is outside [0, 1), the optimizer has no
            momentum, or a scheduler cycles momentum and would overwrite it.
    """
    groups = _check_momentum(optimizer, value, schedulers, group)
    old_value = read_momentum(optimizer, groups[0]) or 0.0

    for index in groups:
        _set_group_momentum(optimizer.param_groups[index], value)
    factor = value / old_value if old_value > 0 else None
    return NudgeChange(
        old_value=old_value, new_value=value, factor=factor, groups=tuple(groups)
    )


def hparams(optimizer: Optimizer) -> list[dict[str, float | None]]:
    """Return each group's lr and momentum as plain floats."""
    return [
        {"lr": read_lr(optimizer, index), "momentum": read_momentum(optimizer, index)}
        for index in range(len(optimizer.param_groups))
    ]


def _check_lr(optimizer: Optimizer, value: float, group: int | str | None) -> list[int]:
    if not math.isfinite(value) or value <= 0:
        raise NudgeRefused(f"lr must be a positive finite number, got {value}")
    groups = select_groups(optimizer, group)
    current = read_lr(optimizer, groups[0])
    if current <= 0:
        raise NudgeRefused(
            f"the current lr of group {groups[0]} is {current}, so it cannot be "
            "scaled; nudge again once the schedule has left 0"
        )
    factor = value / current
    if not math.isfinite(factor) or factor == 0:
        raise NudgeRefused(
            f"lr {value:.6g} is too far from the current {current:.6g}: the ratio "
            "does not fit in a float"
        )
    return groups


def _check_momentum(
    optimizer: Optimizer,
    value: float,
    schedulers: Sequence[Scheduler],
    group: int | str | None,
) -> list[int]:
    if not 0 <= value < 1:
        raise NudgeRefused(f"momentum must be in [0, 1), got {value}")
    groups = select_groups(optimizer, group)
    for scheduler in _flatten(schedulers):
        if isinstance(scheduler, OneCycleLR | CyclicLR) and scheduler.cycle_momentum:
            raise NudgeRefused(
                f"{type(scheduler).__name__} with cycle_momentum=True sets momentum "
                "on every step and would undo this nudge; create it with "
                "cycle_momentum=False to nudge momentum"
            )
    missing = [index for index in groups if read_momentum(optimizer, index) is None]
    if missing:
        raise NudgeRefused(
            f"{type(optimizer).__name__} has no momentum in param group "
            f"{missing[0]} (no 'momentum' or 'betas' key)"
        )
    return groups


def _set_group_momentum(param_group: dict[str, Any], value: float) -> None:
    if "betas" in param_group:
        beta1, *rest = param_group["betas"]
        if isinstance(beta1, torch.Tensor):
            beta1.fill_(value)
        else:
            # Assign a new tuple: Adam reads betas as a whole on every step.
            param_group["betas"] = (value, *rest)
    elif isinstance(param_group["momentum"], torch.Tensor):
        param_group["momentum"].fill_(value)
    else:
        param_group["momentum"] = value


def _scale_scheduler(
    scheduler: Scheduler, groups: list[int], factor: float, scaled: set[int]
) -> None:
    for name in ("base_lrs", "max_lrs"):
        values = getattr(scheduler, name, None)
        if isinstance(values, list):
            for index in groups:
                values[index] = _scaled(values[index], factor, scaled)
    last_lr = getattr(scheduler, "_last_lr", None)
    if isinstance(last_lr, list):
        for index in groups:
            last_lr[index] = scheduler.optimizer.param_groups[index]["lr"]


def _flatten(schedulers: Sequence[Scheduler]) -> list[Scheduler]:
    """List schedulers and those nested in SequentialLR or ChainedScheduler."""
    flat: list[Scheduler] = []
    for scheduler in schedulers:
        flat.append(scheduler)
        flat.extend(_flatten(getattr(scheduler, "_schedulers", ())))
    return flat


def _scaled(value: Any, factor: float, scaled: set[int]) -> Any:
    """Return ``value * factor``; scale a tensor in place, and only once.

    Fused and capturable optimizers hold lr as a tensor that the step reads by
    reference, and a scheduler's ``base_lrs`` may hold the very same tensor as
    the group's ``initial_lr``: ``scaled`` remembers which tensors are done.
    """
    if isinstance(value, torch.Tensor):
        if id(value) not in scaled:
            scaled.add(id(value))
            value.mul_(factor)
        return value
    return value * factor


def _as_float(value: Any) -> float:
    # float() of a tensor lr is a device sync; it happens only when a nudge is
    # applied or lr is logged, and lr tensors normally live on the CPU.
    return float(value)
