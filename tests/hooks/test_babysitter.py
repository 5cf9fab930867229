"""The step hook: checkpoint, apply, acknowledge; undo and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.optim import lr_scheduler

from panda.hooks import babysit
from panda.hooks.nudges import read_lr, read_momentum
from tests.hooks.conftest import (
    FakeRun,
    Setup,
    assert_close,
    make_nudge,
    make_plan,
    make_setup,
    train,
)
from tests.hooks.test_nudges import SCHEDULERS


def _step_lr(optimizer: torch.optim.Optimizer) -> lr_scheduler.StepLR:
    return lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)


def _sitter(setup: Setup, run: FakeRun, tmp_path: Path, **options: object):
    return babysit(
        setup.optimizer,
        run=run,  # type: ignore[arg-type]
        model=setup.model,
        scheduler=setup.scheduler,
        checkpoint_dir=tmp_path / "ckpt",
        **options,  # type: ignore[arg-type]
    )


def test_babysitter_before_step_logs_lr_and_momentum(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup(scheduler=_step_lr)
    train(setup, _sitter(setup, fake_run, tmp_path).batches(setup.loader, epochs=2))
    assert fake_run.points["lr"][0] == 0.05
    assert fake_run.points["lr"][4] == 0.025
    assert fake_run.points["momentum"][11] == 0.9


def test_babysitter_nudge_checkpoints_then_applies_then_acks(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup(scheduler=_step_lr)
    sitter = _sitter(setup, fake_run, tmp_path)

    def nudge_once(step: int) -> None:
        if step == 5:
            fake_run.push(make_nudge(1, "lr", 0.2))

    train(setup, sitter.batches(setup.loader, epochs=2), on_step=nudge_once)

    assert [kind for kind, _ in fake_run.events] == ["checkpoint", "ack"]
    ack = fake_run.acks()[1]
    assert ack["status"] == "applied"
    assert ack["step"] == 6
    assert ack["old_value"] == 0.025
    assert ack["factor"] == pytest.approx(8.0)
    assert ack["checkpoint"] == 1
    assert fake_run.checkpoints[0]["step"] == 6
    assert fake_run.checkpoints[0]["reason"] == "nudge"
    assert Path(fake_run.checkpoints[0]["path"]).is_file()
    assert fake_run.points["lr"][5] == 0.025
    assert fake_run.points["lr"][6] == pytest.approx(0.2)
    assert fake_run.points["lr"][8] == pytest.approx(0.1)


def test_babysitter_without_batches_applies_after_step(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup()
    sitter = _sitter(setup, fake_run, tmp_path)
    fake_run.push(make_nudge(1, "momentum", 0.5))
    for inputs, targets in setup.loader:
        loss = torch.nn.functional.mse_loss(setup.model(inputs), targets)
        setup.optimizer.zero_grad()
        loss.backward()
        setup.optimizer.step()
    assert fake_run.acks()[1]["step"] == 1
    assert read_momentum(setup.optimizer) == 0.5
    assert fake_run.points["momentum"][1] == 0.5
    assert sitter.step == 6


def test_babysitter_refused_nudge_takes_no_checkpoint(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup()
    sitter = _sitter(setup, fake_run, tmp_path)
    fake_run.push(make_nudge(1, "lr", 0.1, group="nope"))
    fake_run.push(make_nudge(2, "beta2", 0.1))
    train(setup, sitter.batches(setup.loader, epochs=1))
    acks = fake_run.acks()
    assert acks[1]["status"] == "rejected"
    assert "named 'nope'" in acks[1]["reason"]
    assert "param must be" in acks[2]["reason"]
    assert fake_run.checkpoints == []
    assert read_lr(setup.optimizer) == 0.05


def test_babysitter_detach_removes_hooks(fake_run: FakeRun, tmp_path: Path) -> None:
    setup = make_setup()
    with _sitter(setup, fake_run, tmp_path) as sitter:
        pass
    setup.optimizer.step()
    assert sitter.step == 0
    assert fake_run.points == {}


def test_babysitter_periodic_checkpoints_keep_the_newest(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup()
    sitter = _sitter(setup, fake_run, tmp_path, checkpoint_every=2, keep_checkpoints=2)
    train(setup, sitter.batches(setup.loader, epochs=2))
    steps = [record["step"] for record in fake_run.checkpoints]
    assert steps == [2, 4, 6, 8, 10, 12]
    left = sorted(path.name[:14] for path in (tmp_path / "ckpt").iterdir())
    assert left == ["step-000000010", "step-000000012"]


def test_babysitter_undo_restores_parameters_and_rewinds_data(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    reference_setup = make_setup(scheduler=_step_lr)
    reference_sitter = _sitter(reference_setup, FakeRun(), tmp_path / "reference")
    reference = train(
        reference_setup, reference_sitter.batches(reference_setup.loader, epochs=3)
    )

    setup = make_setup(scheduler=_step_lr)
    sitter = _sitter(setup, fake_run, tmp_path)
    saved: dict[str, torch.Tensor] = {}

    def nudge_then_undo(step: int) -> None:
        if step == 4 and not saved:
            fake_run.push(make_nudge(1, "lr", 0.5))
        if step == 5 and not saved:
            saved.update({k: v.clone() for k, v in setup.model.state_dict().items()})
        if step == 9 and fake_run.checkpoints and len(fake_run.acks()) == 1:
            fake_run.push(
                make_nudge(2, None, None, action="undo", undoes=1),
                fake_run.checkpoint_out(1),
            )

    losses = train(
        setup, sitter.batches(setup.loader, epochs=3), on_step=nudge_then_undo
    )

    undo_ack = fake_run.acks()[2]
    assert undo_ack == {"status": "applied", "step": 5, "checkpoint": 1}
    steps = [step for step, _ in losses]
    assert steps[:10] == list(range(10))
    assert steps[10:] == list(range(5, 18))
    # After the undo the run is the reference run again, bit for bit.
    assert losses[10:] == reference[5:]
    assert read_lr(setup.optimizer) == read_lr(reference_setup.optimizer)


def test_babysitter_undo_of_missing_checkpoint_is_refused(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup()
    sitter = _sitter(setup, fake_run, tmp_path)
    fake_run.push(make_nudge(2, None, None, action="undo", undoes=1))
    train(setup, sitter.batches(setup.loader, epochs=1))
    assert fake_run.acks()[2]["status"] == "rejected"


def test_babysitter_resume_reproduces_losses_bit_for_bit(tmp_path: Path) -> None:
    reference_setup = make_setup(scheduler=_step_lr)
    reference = train(
        reference_setup,
        _sitter(reference_setup, FakeRun(), tmp_path / "a").batches(
            reference_setup.loader, epochs=3
        ),
    )

    first_run = FakeRun()
    killed = make_setup(scheduler=_step_lr)
    sitter = _sitter(killed, first_run, tmp_path / "b", checkpoint_every=7)
    train(killed, sitter.batches(killed.loader, epochs=3), stop_at=10)

    plan = make_plan(first_run.checkpoint_out(1), replay=[])
    resumed = make_setup(seed=99, scheduler=_step_lr)
    second_run = FakeRun(resume_plan=plan)
    sitter = _sitter(resumed, second_run, tmp_path / "b")
    assert sitter.step == 7
    losses = train(resumed, sitter.batches(resumed.loader, epochs=3))

    assert losses == reference[7:]


def test_babysitter_resume_replays_nudge_exactly(tmp_path: Path) -> None:
    first_run = FakeRun()
    nudged = make_setup(scheduler=_step_lr)
    sitter = _sitter(nudged, first_run, tmp_path)

    def nudge_once(step: int) -> None:
        if step == 6 and not first_run.checkpoints:
            first_run.push(make_nudge(1, "lr", 0.3))

    reference = train(
        nudged, sitter.batches(nudged.loader, epochs=3), on_step=nudge_once
    )
    ack = first_run.acks()[1]

    replay = make_nudge(1, "lr", 0.3, factor=ack["factor"], applied_step=ack["step"])
    plan = make_plan(first_run.checkpoint_out(1), replay=[replay])
    resumed = make_setup(seed=5, scheduler=_step_lr)
    sitter = _sitter(resumed, FakeRun(resume_plan=plan), tmp_path)
    losses = train(resumed, sitter.batches(resumed.loader, epochs=3))

    assert losses == reference[7:]
    assert read_lr(resumed.optimizer) == read_lr(nudged.optimizer)


def test_babysitter_resume_with_wrong_sha_raises(tmp_path: Path) -> None:
    first_run = FakeRun()
    setup = make_setup()
    sitter = _sitter(setup, first_run, tmp_path, checkpoint_every=2)
    train(setup, sitter.batches(setup.loader, epochs=1))
    checkpoint = first_run.checkpoint_out(1).model_copy(update={"sha256": "0" * 64})
    with pytest.raises(Exception, match="sha256"):
        _sitter(make_setup(), FakeRun(resume_plan=make_plan(checkpoint, [])), tmp_path)


def test_babysitter_nudge_when_checkpoint_fails_is_refused(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    setup = make_setup()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the checkpoint folder should be")
    sitter = babysit(
        setup.optimizer,
        run=fake_run,
        model=setup.model,  # type: ignore[arg-type]
        checkpoint_dir=blocker / "ckpt",
    )
    fake_run.push(make_nudge(1, "lr", 0.2))
    train(setup, sitter.batches(setup.loader, epochs=1))
    ack = fake_run.acks()[1]
    assert ack["status"] == "rejected"
    assert "checkpoint before it failed" in ack["reason"]
    assert read_lr(setup.optimizer) == 0.05


def _lr_per_step(
    setup: Setup, batches: object, *, on_step: object = None
) -> dict[int, float]:
    """Train, recording the lr each step runs with."""
    trace: dict[int, float] = {}

    def record(step: int) -> None:
        if on_step is not None:
            on_step(step)  # type: ignore[operator]
        trace[step] = read_lr(setup.optimizer)

    train(setup, batches, on_step=record)  # type: ignore[arg-type]
    return trace


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_nudge_under_scheduler_follows_rule_before_and_after_resume(
    name: str, tmp_path: Path
) -> None:
    factory = SCHEDULERS[name]
    plain_setup = make_setup(scheduler=factory)
    plain = _lr_per_step(
        plain_setup,
        _sitter(plain_setup, FakeRun(), tmp_path / "plain").batches(
            plain_setup.loader, epochs=3
        ),
    )

    first_run = FakeRun()
    nudged_setup = make_setup(scheduler=factory)
    sitter = _sitter(nudged_setup, first_run, tmp_path / "nudged")

    def nudge_once(step: int) -> None:
        if step == 5 and not first_run.checkpoints:
            first_run.push(make_nudge(1, "lr", 0.3 * read_lr(nudged_setup.optimizer)))

    nudged = _lr_per_step(
        nudged_setup, sitter.batches(nudged_setup.loader, epochs=3), on_step=nudge_once
    )
    ack = first_run.acks()[1]
    applied_step = ack["step"]

    # The rule: from the nudge on, α is the schedule's own value times r.
    assert ack["factor"] is not None
    assert ack["factor"] < 1
    for step, lr in nudged.items():
        expected = plain[step] * (ack["factor"] if step >= applied_step else 1.0)
        assert_close(lr, expected)

    # A resume from the nudge's checkpoint replays it and follows the same line.
    replay = make_nudge(1, "lr", 0.0, factor=ack["factor"], applied_step=applied_step)
    plan = make_plan(first_run.checkpoint_out(1), replay=[replay])
    resumed_setup = make_setup(seed=3, scheduler=factory)
    resumed_sitter = _sitter(resumed_setup, FakeRun(resume_plan=plan), tmp_path / "r")
    resumed = _lr_per_step(
        resumed_setup, resumed_sitter.batches(resumed_setup.loader, epochs=3)
    )
    assert min(resumed) == applied_step
    assert resumed == {step: lr for step, lr in nudged.items() if step >= applied_step}
