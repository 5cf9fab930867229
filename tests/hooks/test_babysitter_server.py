"""The babysitter against a real server: nudge, undo and resume end to end."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler

import panda
from panda.hooks.nudges import read_lr
from tests.client.conftest import LiveServer, wait_for
from tests.hooks.conftest import make_setup, train

ROOT = Path(__file__).resolve().parents[2]


def _step_lr(optimizer: torch.optim.Optimizer) -> lr_scheduler.StepLR:
    return lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)


def _init(live: LiveServer, tmp_path: Path, **options: Any) -> panda.Run:
    return panda.init(
        "hook",
        server=live.url,
        spool_dir=tmp_path / "spool",
        heartbeat_wait_s=1.0,
        **options,
    )


def _abandon(run: panda.Run) -> None:
    """Stop a run's threads without ending it, as a killed process would."""
    atexit.unregister(run._finish_at_exit)
    run._watcher.stop()
    run._sender.stop(timeout_s=5)


def _post(live: LiveServer, path: str, body: Any) -> Any:
    with live.api() as api:
        reply = api.post(path, json=body)
    reply.raise_for_status()
    return reply.json()


def _get(live: LiveServer, path: str, **params: Any) -> Any:
    with live.api() as api:
        reply = api.get(path, params=params)
    reply.raise_for_status()
    return reply.json()


def test_babysitter_nudge_from_server_is_acked_with_checkpoint(
    tmp_path: Path, running_server: LiveServer
) -> None:
    run = _init(running_server, tmp_path)
    setup = make_setup(scheduler=_step_lr)
    sitter = panda.babysit(
        setup.optimizer,
        run=run,
        model=setup.model,
        scheduler=setup.scheduler,
        checkpoint_dir=tmp_path / "ckpt",
    )

    def nudge_once(step: int) -> None:
        if step == 5:
            nudge = _post(
                running_server,
                f"/api/runs/{run.id}/nudges",
                {"param": "lr", "value": 0.2, "note": "test"},
            )
            wait_for(lambda: run._inbox.known(nudge["id"]))

    train(setup, sitter.batches(setup.loader, epochs=2), on_step=nudge_once)
    run.finish()

    [nudge] = _get(running_server, f"/api/runs/{run.id}/nudges")
    assert nudge["status"] == "applied"
    assert nudge["applied_step"] == 6
    assert nudge["old_value"] == 0.025
    assert nudge["factor"] == pytest.approx(8.0)
    [checkpoint] = _get(running_server, f"/api/runs/{run.id}/checkpoints")
    assert checkpoint["id"] == nudge["checkpoint"]
    assert checkpoint["step"] == 6
    assert Path(checkpoint["path"]).is_file()
    lr = _get(running_server, f"/api/runs/{run.id}/metrics", key="lr")
    assert lr["values"][6] == pytest.approx(0.2)


def test_babysitter_undo_from_server_moves_run_to_new_branch(
    tmp_path: Path, running_server: LiveServer
) -> None:
    run = _init(running_server, tmp_path)
    setup = make_setup(scheduler=_step_lr)
    sitter = panda.babysit(
        setup.optimizer,
        run=run,
        model=setup.model,
        scheduler=setup.scheduler,
        checkpoint_dir=tmp_path / "ckpt",
    )
    done: set[str] = set()

    def nudge_then_undo(step: int) -> None:
        if step == 3 and "nudge" not in done:
            done.add("nudge")
            nudge = _post(
                running_server,
                f"/api/runs/{run.id}/nudges",
                {"param": "lr", "value": 0.3},
            )
            wait_for(lambda: run._inbox.known(nudge["id"]))
        if step == 8 and "undo" not in done:
            done.add("undo")
            assert run.flush()
            undo = _post(running_server, f"/api/runs/{run.id}/nudges/1/undo", {})
            wait_for(lambda: (run._inbox.known(undo["id"]) or _Missing).checkpoint)

    losses = train(
        setup, sitter.batches(setup.loader, epochs=2), on_step=nudge_then_undo
    )
    run.finish()

    steps = [step for step, _ in losses]
    assert steps == list(range(9)) + list(range(4, 12))
    branches = _get(running_server, f"/api/runs/{run.id}/branches")
    assert [branch["reason"] for branch in branches] == ["start", "undo"]
    assert branches[1]["start_step"] == 4
    assert run.branch == branches[1]["id"]
    loss = _get(running_server, f"/api/runs/{run.id}/metrics", key="lr")
    assert loss["steps"] == list(range(12))
    assert loss["values"][4] == 0.025
    assert read_lr(setup.optimizer) == pytest.approx(0.05 * 0.5**3)


class _Missing:
    checkpoint = None


def test_babysitter_resume_from_server_plan_matches_uninterrupted_run(
    tmp_path: Path, running_server: LiveServer
) -> None:
    reference_setup = make_setup(scheduler=_step_lr)
    reference_run = _init(running_server, tmp_path / "a")
    reference = train(
        reference_setup,
        panda.babysit(
            reference_setup.optimizer,
            run=reference_run,
            model=reference_setup.model,
            scheduler=reference_setup.scheduler,
            checkpoint_dir=tmp_path / "a",
        ).batches(reference_setup.loader, epochs=3),
    )
    reference_run.finish()

    run = _init(running_server, tmp_path)
    killed = make_setup(scheduler=_step_lr)
    sitter = panda.babysit(
        killed.optimizer,
        run=run,
        model=killed.model,
        scheduler=killed.scheduler,
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=5,
    )
    train(killed, sitter.batches(killed.loader, epochs=3), stop_at=13)
    sitter.detach()
    assert run.flush()
    run_id = run.id
    _abandon(run)

    resumed_run = _init(running_server, tmp_path, resume=run_id)
    assert resumed_run.resume_plan is not None
    assert resumed_run.resume_plan.checkpoint.step == 10
    resumed = make_setup(seed=3, scheduler=_step_lr)
    sitter = panda.babysit(
        resumed.optimizer,
        run=resumed_run,
        model=resumed.model,
        scheduler=resumed.scheduler,
        checkpoint_dir=tmp_path / "ckpt",
    )
    losses = train(resumed, sitter.batches(resumed.loader, epochs=3))
    resumed_run.finish()

    assert losses == reference[10:]
    loss_line = _get(running_server, f"/api/runs/{run_id}/metrics", key="lr")
    assert loss_line["steps"] == list(range(18))


def _train_process(
    live: LiveServer, tmp_path: Path, *, kill_at: int, resume: int | None = None
) -> int:
    env = {**os.environ, "PANDA_HOME": str(tmp_path / "home")}
    env.pop("PANDA_RESUME", None)
    if resume is not None:
        env["PANDA_RESUME"] = str(resume)
    command = [
        sys.executable,
        "-m",
        "tests.hooks.sigkill_train",
        live.url,
        str(tmp_path / "ckpt"),
        str(tmp_path / "spool"),
        str(kill_at),
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, timeout=120, check=False)
    return done.returncode


def test_babysitter_resume_after_sigkill_matches_uninterrupted_run(
    tmp_path: Path, running_server: LiveServer
) -> None:
    assert _train_process(running_server, tmp_path / "a", kill_at=-1) == 0
    assert _train_process(running_server, tmp_path / "b", kill_at=13) == -signal.SIGKILL
    reference_id, killed_id = sorted(
        run["id"] for run in _get(running_server, "/api/runs")
    )

    assert (
        _train_process(running_server, tmp_path / "b", kill_at=-1, resume=killed_id)
        == 0
    )

    reference = _get(running_server, f"/api/runs/{reference_id}/metrics", key="loss")
    resumed = _get(running_server, f"/api/runs/{killed_id}/metrics", key="loss")
    assert resumed["steps"] == list(range(18))
    assert resumed["values"] == reference["values"]
    assert _get(running_server, f"/api/runs/{killed_id}")["status"] == "finished"
