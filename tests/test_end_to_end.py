"""A real ``panda serve`` process, a real training process, a nudge over REST."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

EPOCHS = 4
STEPS_PER_EPOCH = 45  # ceil(1437 training digits / batch of 32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def panda_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server_url(panda_home: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panda",
            "serve",
            "--port",
            str(port),
            "--home",
            str(panda_home),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError((tmp_path / "server.log").read_text())
        try:
            return httpx.get(f"{url}/api/runs", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, timeout_s=30, what="panda serve to answer")
        yield url
    finally:
        stop(process)
        log.close()


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
