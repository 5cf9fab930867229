"""SIGKILL while a checkpoint is being written: the resume takes the last whole one.

A training process with a large model checkpoints every few steps. The test
watches the checkpoint folder and kills the process the moment the temporary
file of a later checkpoint appears, before its rename. The half-written file
must never pass for a checkpoint: no final name for it, nothing registered on
the server, and ``PANDA_RESUME`` loads the earlier, complete checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from panda.errors import CheckpointNotFound
from panda.hooks.checkpoints import file_sha256, load_checkpoint
from tests.client.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
EVERY = 4
BALLAST_FLOATS = 16 * 2**20  # 64 MiB of model state: writing it takes a while
SCRIPT = """
import sys, torch, panda
url, checkpoint_dir = sys.argv[1], sys.argv[2]
steps, every, ballast = (int(arg) for arg in sys.argv[3:6])
run = panda.init("big", server=url, heartbeat_wait_s=1)
model = torch.nn.Linear(4, 1)
model.register_buffer("ballast", torch.zeros(ballast))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
sitter = panda.babysit(optimizer, run=run, model=model,
                       checkpoint_dir=checkpoint_dir, checkpoint_every=every)
while sitter.step < steps:
    step = sitter.step
    loss = model(torch.ones(2, 4)).pow(2).mean()
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    run.log({"loss": loss}, step=step)
    if step == every - 1:
        run.flush()  # the first checkpoint is registered before the second starts
run.finish()
"""


def _train(
    live: LiveServer, tmp_path: Path, steps: int, **env: str
) -> subprocess.Popen[bytes]:
    environment = {
        key: value for key, value in os.environ.items() if key != "PANDA_RESUME"
    }
    environment.update(PANDA_HOME=str(tmp_path / "home"), **env)
    command = [
        sys.executable,
        "-c",
        SCRIPT,
        live.url,
        str(tmp_path / "ckpt"),
        str(steps),
        str(EVERY),
        str(BALLAST_FLOATS),
    ]
    with (tmp_path / "train.log").open("ab") as log:
        return subprocess.Popen(
            command, env=environment, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )


def _kill_during_write(process: subprocess.Popen[bytes], folder: Path) -> Path:
    """SIGKILL ``process`` once the temporary file of checkpoint 2 appears."""
    pattern = f".step-{2 * EVERY:09d}-*.tmp"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        partial = list(folder.glob(pattern)) if folder.exists() else []
        if partial:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            return partial[0]
        time.sleep(0.001)
    raise AssertionError(f"never saw {pattern}; exit status {process.poll()}")


def test_sigkill_during_checkpoint_write_resumes_from_last_whole_one(
    tmp_path: Path, running_server: LiveServer
) -> None:
    folder = tmp_path / "ckpt"
    killed = _train(running_server, tmp_path, steps=1000)
    partial = _kill_during_write(killed, folder)
    log = (tmp_path / "train.log").read_text()

    # The half-written file was left under its temporary name only.
    assert partial.exists(), "the rename finished before the kill; enlarge BALLAST"
    assert not list(folder.glob(f"step-{2 * EVERY:09d}-*.pt")), log
    with pytest.raises(CheckpointNotFound):
        load_checkpoint(partial)
    [whole] = folder.glob(f"step-{EVERY:09d}-*.pt")

    with running_server.api() as api:
        [run] = api.get("/api/runs").json()
        indexed = api.get(f"/api/runs/{run['id']}/checkpoints").json()
        assert [(c["step"], c["path"]) for c in indexed] == [(EVERY, str(whole))]
        assert indexed[0]["sha256"] == file_sha256(whole)

        resumed = _train(
            running_server, tmp_path, steps=2 * EVERY + 2, PANDA_RESUME=str(run["id"])
        )
        assert resumed.wait(120) == 0, (tmp_path / "train.log").read_text()
        branches = api.get(f"/api/runs/{run['id']}/branches").json()
        loss = api.get(
            f"/api/runs/{run['id']}/metrics", params={"key": "loss", "all": "true"}
        ).json()

    assert [b["reason"] for b in branches] == ["start", "resume"]
    assert branches[1]["start_step"] == EVERY
    assert loss["steps"] == list(range(2 * EVERY + 2))
    state = torch.load(whole, map_location="cpu", weights_only=True)
    assert state["step"] == EVERY
