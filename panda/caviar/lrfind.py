"""The learning-rate range test: train briefly while α grows, and read the curve.

:func:`lr_find` raises α exponentially from ``start`` to ``end`` over ``steps``
optimizer steps, one mini-batch each, records the loss, and stops once the
smoothed loss diverges. The model, the optimizer and torch's random state are
put back as they were, so the test can run on weights about to be trained.
The suggested α is where the smoothed loss falls fastest per decade of α,
before divergence.

torch is imported lazily, and matplotlib only by :func:`plot_lr_find`.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SMOOTHING = 0.9
"""Weight of the past in the exponential moving average of the loss."""

DIVERGENCE_FACTOR = 4.0
"""Stop once the smoothed loss exceeds this many times its lowest value."""


def lr_find(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    *,
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 100,
    smoothing: float = SMOOTHING,
    divergence: float = DIVERGENCE_FACTOR,
) -> tuple[list[float], list[float], float]:
    """Run the range test and return ``(lrs, losses, suggested)``.

    Args:
        model: the model, trained in place and restored afterwards.
        optimizer: its optimizer; every param group gets the same α.
        loader: yields ``(inputs, targets)`` batches; cycled if it runs out.
        loss_fn: ``loss_fn(model(inputs), targets)`` -> a scalar tensor.
        start: the first α, > 0.
        end: the last α, > ``start``.
        steps: how many α values (one optimizer step each), >= 3.
        smoothing: EMA weight of the past for the smoothed loss, in [0, 1).
        divergence: stop when the smoothed loss passes this times its minimum.

    Returns:
        The α of each step taken, its raw loss, and the suggested α.

    Raises:
        ValueError: bad bounds or counts, or a loader with no batches.
    """
    import torch

    if not 0 < start < end or not math.isfinite(end):
        raise ValueError(f"need 0 < start < end, got start={start}, end={end}")
    if steps < 3:
        raise ValueError(f"steps must be >= 3, got {steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")

    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_rng = torch.get_rng_state()
    was_training = model.training
    try:
        lrs, losses = _sweep_lr(
            model, optimizer, loader, loss_fn, start, end, steps, smoothing, divergence
        )
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        torch.set_rng_state(saved_rng)
        model.train(was_training)
    return lrs, losses, suggest_from_curve(lrs, losses, smoothing=smoothing)


def _sweep_lr(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    start: float,
    end: float,
    steps: int,
    smoothing: float,
    divergence: float,
) -> tuple[list[float], list[float]]:
    ratio = (end / start) ** (1.0 / (steps - 1))
    batches = itertools.cycle(loader)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed = 0.0
    lowest = math.inf
    model.train()
    for index in range(steps):
        lr = start * ratio**index
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            inputs, targets = next(batches)
        except StopIteration:
            raise ValueError("the loader yielded no batches") from None

        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        # .item() syncs with the device once per step; the test is short.
        value = float(loss.item())
        lrs.append(lr)
        losses.append(value)

        # Bias-corrected moving average, as the first steps have little past.
        smoothed = smoothing * smoothed + (1 - smoothing) * value
        current = smoothed / (1 - smoothing ** (index + 1))
        if not math.isfinite(current) or current > divergence * lowest:
            break
        lowest = min(lowest, current)
    return lrs, losses


def smooth_losses(losses: Sequence[float], smoothing: float = SMOOTHING) -> list[float]:
    """Return the bias-corrected exponential moving average of ``losses``."""
    smoothed = 0.0
    out = []
    for index, value in enumerate(losses):
        smoothed = smoothing * smoothed + (1 - smoothing) * value
        out.append(smoothed / (1 - smoothing ** (index + 1)))
    return out


def suggest_from_curve(
    lrs: Sequence[float], losses: Sequence[float], *, smoothing: float = SMOOTHING
) -> float:
    """Return the α where the smoothed loss falls fastest against log10 α.

    Only the curve before its minimum counts, so a plunge into divergence is
    never picked; the first tenth is skipped, where the average still settles.
    """
    if len(lrs) != len(losses) or len(lrs) < 3:
        raise ValueError("need at least 3 (α, loss) pairs of equal length")
    smoothed = smooth_losses(losses, smoothing)
    finite = [i for i, value in enumerate(smoothed) if math.isfinite(value)]
    if len(finite) < 3:
        return float(lrs[0])
    lowest = min(finite, key=lambda i: smoothed[i])
    first = min(len(lrs) // 10, max(lowest - 2, 0))
    window = range(max(first, 1), lowest + 1)
    if len(window) == 0:
        return float(lrs[lowest])

    def slope(i: int) -> float:
        run = math.log10(lrs[i]) - math.log10(lrs[i - 1])
        return (smoothed[i] - smoothed[i - 1]) / run

    steepest = min(window, key=slope)
    return float(lrs[steepest])


def plot_lr_find(
    lrs: Sequence[float],
    losses: Sequence[float],
    suggested: float | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Plot loss against α (log x), the smoothed curve, and the suggested α."""
    from matplotlib.figure import Figure

    if ax is None:
        figure = Figure(figsize=(7, 4.2), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.get_figure()  # type: ignore[assignment]
    ax.plot(lrs, losses, color="#9ca3af", linewidth=1, label="loss")
    ax.plot(lrs, smooth_losses(losses), color="#2563eb", linewidth=2, label="smoothed")
    if suggested is not None:
        ax.axvline(
            suggested, color="#ea580c", linestyle="--", label=f"α = {suggested:.3g}"
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate α")
    ax.set_ylabel("loss")
    finite = [value for value in losses if math.isfinite(value)]
    if finite:
        # Divergence would squash the useful part of the curve.
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 3 * finite[0]) * 1.05)
    ax.set_title("Learning-rate range test")
    ax.legend()
    return figure
