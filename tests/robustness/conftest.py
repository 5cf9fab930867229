"""Real ``panda serve`` processes that tests can kill and restart, and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.processes import Served, free_port, wait_for

__all__ = ["Jobs", "Served", "free_port", "read_step_times", "wait_for"]

JOB_SCRIPT = Path(__file__).with_name("paced_job.py")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Return a factory of ``panda serve`` processes; stops them all at the end."""
    started: list[Served] = []

    def factory(name: str = "server", **env: str) -> Served:
        served = Served(tmp_path / name, env=env)
        started.append(served)
        return served

    yield factory
    for served in started:
        served.stop()


class Jobs:
    """Start ``paced_job.py`` processes; kill any still running at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        server_url: str,
        *,
        steps: int,
        pace: float,
        name: str = "job",
        checkpoint_every: int = 0,
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a job; return the process and its step-times file.

        The job stops early once ``stop_file(name)`` exists.
        """
        times = self.tmp_path / f"{name}.times"
        command = [
            *self.command(name),
            "--steps", str(steps),
            "--pace", str(pace),
            "--checkpoint-every", str(checkpoint_every),
        ]  # fmt: skip
        environment = {
            key: value for key, value in os.environ.items() if key != "PANDA_RESUME"
        }
        environment.update(PANDA_URL=server_url, PANDA_HOME=str(self.home(name)))
        with self.log_path(name).open("ab") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=environment
            )
        self.started.append(process)
        return process, times

    def command(self, name: str) -> list[str]:
        return [
            sys.executable, str(JOB_SCRIPT),
            "--times", str(self.tmp_path / f"{name}.times"),
            "--checkpoint-dir", str(self.tmp_path / f"{name}-ckpt"),
            "--stop-file", str(self.stop_file(name)),
        ]  # fmt: skip

    def home(self, name: str) -> Path:
        return self.tmp_path / f"{name}-home"

    def stop_file(self, name: str) -> Path:
        return self.tmp_path / f"{name}.stop"

    def log_path(self, name: str) -> Path:
        return self.tmp_path / f"{name}.log"

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    """Return a starter of paced training jobs."""
    starter = Jobs(tmp_path)
    yield starter
    starter.kill_all()


def read_step_times(path: Path) -> list[tuple[int, float]]:
    """Return the (step, wall-clock time) pairs a paced job wrote."""
    pairs = []
    for line in path.read_text().splitlines():
        step, moment = line.split()
        pairs.append((int(step), float(moment)))
    return pairs
