"""A stand-in for a run, and a small seeded training setup, for hook tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from panda.client import CheckpointTicket, PendingNudge
from panda.protocol import CheckpointOut, NudgeOut, ResumePlan, RunOut

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_nudge(
    nudge_id: int,
    param: str | None = "lr",
    value: float | None = 0.1,
    *,
    action: str = "set",
    group: int | str | None = None,
    factor: float | None = None,
    applied_step: int | None = None,
    undoes: int | None = None,
) -> NudgeOut:
    """Build a nudge as the server would list it."""
    return NudgeOut(
        id=nudge_id,
        run=1,
        action=action,
        param=param,
        value=value,
        old_value=None,
        group=group,
        factor=factor,
        status="applied" if applied_step is not None else "pending",
        reason=None,
        note=None,
        requested_at=NOW,
        applied_at=None,
        applied_step=applied_step,
        checkpoint=None,
        undoes=undoes,
    )


def make_checkpoint_out(checkpoint_id: int, record: dict[str, Any]) -> CheckpointOut:
    """Describe a checkpoint the fake run registered, as the server would."""
    return CheckpointOut(
        id=checkpoint_id,
        run=1,
        branch=1,
        step=record["step"],
        path=record["path"],
        size_bytes=record["size_bytes"],
        sha256=record["sha256"],
        reason=record["reason"],
        created_at=NOW,
    )


def make_plan(checkpoint: CheckpointOut, replay: list[NudgeOut]) -> ResumePlan:
    run = RunOut(
        id=1,
        name="test",
        status="running",
        config={},
        created_at=NOW,
        updated_at=NOW,
        heartbeat_at=None,
        finished_at=None,
        last_step=None,
        last_values={},
        branch=2,
    )
    return ResumePlan(run=run, branch=2, checkpoint=checkpoint, replay=replay)


@dataclass
class FakeRun:
    """Records what the babysitter asks of a run; hands it queued nudges."""

    id: int = 1
    branch: int = 1
    resume_plan: ResumePlan | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    points: dict[str, dict[int, float]] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    pending: list[PendingNudge] = field(default_factory=list)

    def push(self, nudge: NudgeOut, checkpoint: CheckpointOut | None = None) -> None:
        self.pending.append(PendingNudge(nudge, checkpoint))

    def take_nudges(self) -> list[PendingNudge]:
        taken, self.pending = self.pending, []
        return taken

    def log(self, metrics: dict[str, Any], *, step: int) -> None:
        for key, value in metrics.items():
            self.points.setdefault(key, {})[step] = float(value)

    def register_checkpoint(self, **record: Any) -> CheckpointTicket:
        self.checkpoints.append(record)
        ticket = CheckpointTicket(
            len(self.checkpoints), step=record["step"], path=record["path"]
        )
        ticket._set_id(len(self.checkpoints))
        self.events.append(("checkpoint", ticket.id))
        return ticket

    def ack_nudge(self, nudge: int, **ack: Any) -> None:
        checkpoint = ack.get("checkpoint")
        if isinstance(checkpoint, CheckpointTicket):
            ack["checkpoint"] = checkpoint.id
        self.events.append(("ack", (nudge, ack)))

    def delete_checkpoint(self, checkpoint: Any, *, path: str | None = None) -> None:
        self.events.append(("delete", path))
        if path is not None:
            Path(path).unlink()

    def acks(self) -> dict[int, dict[str, Any]]:
        return {
            nudge: ack
            for kind, (nudge, ack) in ((k, v) for k, v in self.events if k == "ack")
        }

    def checkpoint_out(self, checkpoint_id: int) -> CheckpointOut:
        return make_checkpoint_out(checkpoint_id, self.checkpoints[checkpoint_id - 1])


@pytest.fixture
def fake_run() -> FakeRun:
    return FakeRun()


@dataclass
class Setup:
    """A seeded model, optimizer, scheduler and shuffled loader."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    loader: DataLoader[tuple[torch.Tensor, ...]]


def make_setup(
    seed: int = 0,
    *,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
) -> Setup:
    """Build the same training setup from ``seed`` every time."""
    generator = torch.Generator().manual_seed(1234)
    inputs = torch.randn(48, 4, generator=generator)
    targets = inputs.sum(dim=1, keepdim=True) + 0.1 * torch.randn(
        48, 1, generator=generator
    )
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(16, 1),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=8, shuffle=True)
    return Setup(model, optimizer, scheduler(optimizer) if scheduler else None, loader)


def train(
    setup: Setup,
    batches: Iterator[tuple[int, tuple[torch.Tensor, torch.Tensor]]],
    *,
    stop_at: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[tuple[int, float]]:
    """Run the loop; return (step, loss) for every step taken, in order."""
    losses = []
    for step, (inputs, targets) in batches:
        if step == stop_at:
            break
        if on_step is not None:
            on_step(step)
        loss = torch.nn.functional.mse_loss(setup.model(inputs), targets)
        setup.optimizer.zero_grad()
        loss.backward()
        setup.optimizer.step()
        if setup.scheduler is not None:
            setup.scheduler.step()
        losses.append((step, loss.item()))
    return losses


def assert_close(actual: float, expected: float) -> None:
    assert math.isclose(actual, expected, rel_tol=1e-9), (actual, expected)


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator[Any]:
    """A real panda server on a free loopback port."""
    from tests.client.conftest import start_server

    home = tmp_path / "server"
    home.mkdir()
    live = start_server(home)
    yield live
    live.stop()
