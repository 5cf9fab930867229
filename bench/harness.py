"""What every bench script shares: servers on free loopback ports, timing, tables.

The scripts import this module as ``harness`` (they run as ``python bench/x.py``,
so this folder is on ``sys.path``). Servers are subprocesses bound to 127.0.0.1
and stopped by their own PID.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


_scratch: list[Path] = []


def scratch_dir() -> Path:
    """Return a new folder that is removed when the process exits.

    The removal is registered with ``atexit`` the first time this is called;
    call it before importing Aim, whose own exit handler must run first (atexit
    runs handlers last-registered first) because it flushes into the folder.
    """
    if not _scratch:
        root = Path(tempfile.mkdtemp("-bench"))
        _scratch.append(root)
        atexit.register(shutil.rmtree, root, True)
    return Path(tempfile.mkdtemp(dir=_scratch[0]))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(
    url: str, *, timeout_s: float, process: subprocess.Popen[Any]
) -> None:
    """Poll ``url`` until it answers; fail if ``process`` dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} on start")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


@dataclass
class Server:
    """A server subprocess, its URL and its working directory."""

    url: str
    process: subprocess.Popen[Any]
    home: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        """Resident memory of the server process now, from /proc."""
        return read_status_kib(self.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        """Highest resident memory the server process has had, from /proc."""
        return read_status_kib(self.pid, "VmHWM") / 1024


def read_status_kib(pid: int, field: str) -> int:
    """Read a ``kB`` field such as VmRSS from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def panda_server(home: Path | None = None) -> Iterator[Server]:
    """Run ``python -m panda serve`` on a free loopback port with its own home."""
    with contextlib.ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory("-panda")))
        port = free_port()
        command = [sys.executable, "-m", "panda", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--home", str(home)]
        log = (home / "server.log").open("w")
        stack.callback(log.close)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(_stop, process)
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url + "/api/runs", timeout_s=60, process=process)
        yield Server(url, process, home)


@contextlib.contextmanager
def mlflow_server() -> Iterator[Server]:
    """Run ``mlflow server`` on SQLite (one worker) on a free loopback port."""
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    if mlflow is None:
        raise ModuleNotFoundError("mlflow is not installed in this environment")
    with tempfile.TemporaryDirectory("-mlflow") as directory:
        home = Path(directory)
        port = free_port()
        command = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}"]
        command += ["--default-artifact-root", str(home / "artifacts")]
        command += ["--workers", "1"]
        with (home / "server.log").open("w") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=home,
                start_new_session=True,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                wait_until_up(url + "/health", timeout_s=120, process=process)
                yield Server(url, process, home)
            finally:
                _stop_group(process)


def _stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop a server that forks workers: signal the group it leads, by its PID."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(5)


def count_panda_points(home: Path, run_id: int) -> int:
    """Count the points stored for ``run_id`` in a panda home's SQLite file."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(home / "panda.db")) as connection:
        row = connection.execute(
            "SELECT coalesce(sum(count), 0) FROM point_chunks "
            "JOIN series ON series.id = point_chunks.series_id "
            "JOIN branches ON branches.id = series.branch_id WHERE branches.run_id = ?",
            (run_id,),
        ).fetchone()
    return int(row[0])


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """Run ``measure`` ``repeats`` times and return the median result."""
    return statistics.median(measure() for _ in range(repeats))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def anchor_missing(name: str) -> str | None:
    """Return why an anchor cannot run here, or None if it can be imported."""
    try:
        __import__(name)
    except Exception as error:
        return f"{type(error).__name__}: {error}".splitlines()[0][:60]
    return None


def print_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Print a Markdown table as the script's last lines, with date and machine."""
    cores = os.cpu_count()
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    print()
    print(f"## {title}")
    print()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{now}, {cores} cores, load average {load}, "
        f"Python {platform.python_version()}, panda at {tree_state()}"
    )
    print()
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(header)
    ]
    print(_line([str(h) for h in header], widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print(_line(row, widths))


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
    return "| " + " | ".join(padded) + " |"


def tree_state() -> str:
    """Return the checkout's commit, marked ``+changes`` when panda/ differs."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "panda", "migrations"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return commit + (" +changes in panda/" if changed else "")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
