"""Token, bind address and checkpoint paths, on real ``panda serve`` processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import panda
from tests.robustness.conftest import Served, free_port

TOKEN = "s3cret-token"
SHA = "0" * 64


def _environment(**extra: str) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if key != "PANDA_TOKEN"
    }
    return {**environment, **extra}


def test_serve_beyond_loopback_without_token_exits_and_never_binds(
    tmp_path: Path,
) -> None:
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "panda",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--home",
            str(tmp_path / "home"),
        ],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert "without a token" in errors[0]
    assert "PANDA_TOKEN" in errors[0]
    assert "Traceback" not in done.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_token_server_refuses_writes_without_it_and_client_sends_it(
    serve: Callable[..., Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(PANDA_TOKEN=TOKEN).start()
    with server.api() as anonymous, server.api(authorization=f"Bearer {TOKEN}") as api:
        assert anonymous.post("/runs", json={}).status_code == 401
        assert (
            anonymous.post(
                "/runs", json={}, headers={"authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        assert api.post("/runs", json={"name": "manual"}).status_code == 201
        assert anonymous.get("/runs").status_code == 200
        assert (
            anonymous.post(
                "/runs/1/nudges", json={"param": "lr", "value": 0.1}
            ).status_code
            == 401
        )

        monkeypatch.setenv("PANDA_TOKEN", TOKEN)
        run = panda.init("with-token", server=server.url, spool_dir=tmp_path / "s")
        for step in range(20):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.finish()
        stored = api.get(f"/runs/{run.id}/metrics", params={"key": "loss"}).json()
        assert stored["steps"] == list(range(20))
        assert api.get(f"/runs/{run.id}").json()["status"] == "finished"

    command = [
        sys.executable,
        "-m",
        "panda",
        "nudge",
        "1",
        "lr=0.01",
        "--server",
        server.url,
    ]
    refused = subprocess.run(
        command,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error:")
    assert "401" in refused.stderr
    accepted = subprocess.run(
        command,
        env=_environment(PANDA_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "[pending]" in accepted.stdout


def test_checkpoint_paths_are_never_opened_or_deleted_by_the_server(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    server = serve().start()
    outside = tmp_path / "precious.pt"
    outside.write_bytes(b"weights")
    inside = server.home / "checkpoints" / "kept.pt"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"weights")
    # Opening a FIFO for reading blocks until a writer comes: a server that
    # touched this file would hang the request past its timeout.
    fifo = tmp_path / "trap.pt"
    os.mkfifo(fifo)
    paths = [
        "../../etc/passwd",
        "/etc/shadow",
        str(outside),
        str(inside),
        str(fifo),
        str(server.home / "panda.db"),
    ]

    with server.api() as api:
        run = api.post("/runs", json={}).json()["id"]
        for index, path in enumerate(paths):
            body = {"step": index, "path": path, "size_bytes": 7, "sha256": SHA}
            reply = api.post(f"/runs/{run}/checkpoints", json=body, timeout=5)
            assert reply.status_code == 201, reply.text
            assert reply.json()["path"] == path
        for checkpoint in api.get(f"/runs/{run}/checkpoints", timeout=5).json():
            deleted = api.delete(
                f"/runs/{run}/checkpoints/{checkpoint['id']}", timeout=5
            )
            assert deleted.status_code == 200, deleted.text
            assert deleted.json()["deleted"] is True
        assert api.post(f"/runs/{run}/resume", json={}, timeout=5).status_code == 404

        for traversal in (
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/..%2f..%2fetc%2fpasswd",
            "/api/../../etc/passwd",
        ):
            reply = httpx.get(f"{server.url}{traversal}", timeout=5)
            assert "root:" not in reply.text, traversal

    assert outside.read_bytes() == b"weights"
    assert inside.read_bytes() == b"weights"
    assert fifo.exists()
    assert (server.home / "panda.db").exists()
