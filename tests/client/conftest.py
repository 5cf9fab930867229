"""A real panda server on a free loopback port, for client tests."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from panda.config import Settings


@dataclass
class LiveServer:
    url: str
    serving: contextlib.ExitStack

    def stop(self) -> None:
        self.serving.close()

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, port: int = 0) -> LiveServer:
    """Serve a fresh app on 127.0.0.1 (``port`` 0 picks a free one)."""
    from panda.server.app import create_app
    from panda.server.thread import serve_in_thread

    settings = Settings(home=home, db=f"sqlite:///{home / 'panda.db'}")
    serving = contextlib.ExitStack()
    url = serving.enter_context(serve_in_thread(create_app(settings), port=port))
    return LiveServer(url, serving)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def factory(port: int = 0) -> LiveServer:
        home = tmp_path / "server"
        home.mkdir(exist_ok=True)
        live = start_server(home, port)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


@pytest.fixture
def running_server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory()


def wait_for(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    """Poll ``condition`` until it is truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
