"""A real ``panda serve`` process, a real training process, a nudge over REST."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import Served, wait_for

EPOCHS = 4
STEPS_PER_EPOCH = 45  # ceil(1437 training digits / batch of 32)


@pytest.fixture
def panda_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server_url(panda_home: Path) -> Iterator[str]:
    served = Served(panda_home).start()
    try:
        yield served.url
    finally:
        served.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def api(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server_url}/api", timeout=10) as client:
        yield client


@contextlib.contextmanager
def demo_job(
    server_url: str, panda_home: Path, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    environment = {**os.environ, "PANDA_HOME": str(panda_home)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "panda",
                "demo",
                "--server",
                server_url,
                "--epochs",
                str(EPOCHS),
                "--pace",
                "40",
                "--name",
                "e2e",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        try:
            yield process
        finally:
            stop(process)


def test_nudge_over_rest_is_applied_to_real_training(
    server_url: str, panda_home: Path, tmp_path: Path, api: httpx.Client
) -> None:
    job_log = tmp_path / "job.log"
    with demo_job(server_url, panda_home, job_log) as job:
        run = wait_for(
            lambda: next(
                (r for r in api.get("/runs").json() if (r["last_step"] or 0) >= 30),
                None,
            ),
            timeout_s=60,
            what="the training job to reach step 30",
        )
        assert run["status"] == "running"

        response = api.post(
            f"/runs/{run['id']}/nudges",
            json={"param": "lr", "value": 0.01, "note": "plateau"},
        )
        assert response.status_code == 201, response.text
        nudge = response.json()
        assert nudge["status"] == "pending"

        assert job.wait(120) == 0, job_log.read_text()

    run_id = run["id"]
    applied = api.get(f"/runs/{run_id}/nudges/{nudge['id']}").json()
    assert applied["status"] == "applied"
    applied_step = applied["applied_step"]
    assert applied_step > 30
    assert applied["old_value"] == pytest.approx(0.05)
    assert applied["value"] == pytest.approx(0.01)

    lr = api.get(f"/runs/{run_id}/metrics", params={"key": "lr"}).json()
    by_step = dict(zip(lr["steps"], lr["values"], strict=True))
    assert by_step[applied_step - 1] == pytest.approx(0.05)
    assert all(
        value == pytest.approx(0.01)
        for step, value in by_step.items()
        if step >= applied_step
    )

    checkpoints = api.get(f"/runs/{run_id}/checkpoints").json()
    taken = [c for c in checkpoints if c["id"] == applied["checkpoint"]]
    assert taken, checkpoints
    assert taken[0]["step"] == applied_step
    assert Path(taken[0]["path"]).is_file()

    total_steps = EPOCHS * STEPS_PER_EPOCH
    loss = api.get(f"/runs/{run_id}/metrics", params={"key": "train/loss"}).json()
    assert loss["steps"] == list(range(total_steps))
    assert all(math.isfinite(float(value)) for value in loss["values"])
    val_acc = api.get(f"/runs/{run_id}/metrics", params={"key": "val/acc"}).json()
    assert len(val_acc["steps"]) == EPOCHS
    assert api.get(f"/runs/{run_id}").json()["status"] == "finished"
