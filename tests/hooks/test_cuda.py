"""The babysitter with a model and a metric on a CUDA device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from panda.hooks import babysit
from panda.hooks.nudges import read_lr
from tests.hooks.conftest import FakeRun, make_nudge

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_babysitter_on_cuda_undo_restores_parameters(tmp_path: Path) -> None:
    run = FakeRun()
    model = torch.nn.Linear(4, 1).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, capturable=True)
    sitter = babysit(optimizer, run=run, model=model, checkpoint_dir=tmp_path)  # type: ignore[arg-type]
    inputs = torch.randn(8, 4, device="cuda")
    saved = {}
    for step in range(6):
        if step == 2:
            run.push(make_nudge(1, "lr", 0.05))
        if step == 3:
            saved = {k: v.clone() for k, v in model.state_dict().items()}
        loss = model(inputs).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert read_lr(optimizer) == pytest.approx(0.05)

    run.push(make_nudge(2, None, None, action="undo", undoes=1), run.checkpoint_out(1))
    optimizer.step()
    assert sitter.step == 3
    for key, value in model.state_dict().items():
        assert value.is_cuda
        assert torch.equal(value, saved[key])
    assert read_lr(optimizer) == pytest.approx(0.01)
