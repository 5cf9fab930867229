"""Real ``panda serve`` processes that tests can kill and restart, and helpers."""

from __future__ import annotations

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

JOB_SCRIPT = Path(__file__).with_name("paced_job.py")
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Served:
    """One ``python -m panda serve`` process on a fixed port and data directory.

    ``kill()`` SIGKILLs it; ``start()`` again serves the same database on the
    same port. Its output from every start goes to one log file.
    """

    def __init__(self, home: Path, *, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home.parent / f"{home.name}-server.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> Served:
        command = [
            sys.executable,
            "-m",
            "panda",
            "serve",
            "--port",
            str(self.port),
            "--home",
            str(self.home),
            *extra,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        wait_for(self._answers, timeout_s=START_TIMEOUT_S, what="panda serve")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"panda serve exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/api/runs", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api", timeout=10, headers=headers)


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
