"""The learning-rate range test: weights restored exactly, a sane α on digits."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from panda.caviar.lrfind import lr_find, suggest_from_curve  # noqa: E402
from panda.demo import lr_find_digits  # noqa: E402


def test_lr_find_on_digits_restores_weights_and_suggests_sane_alpha() -> None:
    captured: dict[str, object] = {}

    def finder(model, optimizer, loader, loss_fn, **options):  # type: ignore[no-untyped-def]
        before = {k: v.clone() for k, v in model.state_dict().items()}
        optimizer_before = repr(optimizer.state_dict())
        result = lr_find(model, optimizer, loader, loss_fn, **options)
        captured["same_weights"] = all(
            torch.equal(before[k], v) for k, v in model.state_dict().items()
        )
        captured["same_optimizer"] = repr(optimizer.state_dict()) == optimizer_before
        return result

    lrs, losses, suggested = lr_find_digits(
        finder, start=1e-4, end=10.0, steps=60, device=torch.device("cpu")
    )

    assert captured == {"same_weights": True, "same_optimizer": True}
    assert len(lrs) == len(losses) <= 60
    assert lrs == sorted(lrs)
    assert lrs[-1] < 10.0  # stopped at divergence
    assert 1e-3 <= suggested <= 1.0


def test_suggest_from_curve_picks_steepest_fall_before_minimum() -> None:
    lrs = [10 ** (-5 + i * 0.25) for i in range(20)]
    losses = [2.0] * 6 + [
        1.8,
        1.2,
        0.6,
        0.4,
        0.35,
        0.33,
        0.32,
        0.5,
        2,
        9,
        40,
        90,
        99,
        99,
    ]

    suggested = suggest_from_curve(lrs, losses, smoothing=0.0)

    assert suggested == lrs[7]


def test_lr_find_rejects_bad_bounds() -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    with pytest.raises(ValueError, match="start < end"):
        lr_find(model, optimizer, [], torch.nn.MSELoss(), start=1.0, end=0.1)
