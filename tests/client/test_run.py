"""Run: argument checks, batching, finish, nudges, spooling and replay."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

import panda
from panda.client import run as run_module
from tests.client.conftest import LiveServer, free_port, wait_for

_RUN_REPLY = {
    "id": 7,
    "name": "test",
    "status": "running",
    "config": {},
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "heartbeat_at": None,
    "finished_at": None,
    "last_step": None,
    "last_values": {},
    "branch": 1,
}


def _init(server: str, tmp_path: Path, **options: Any) -> panda.Run:
    options.setdefault("heartbeat_wait_s", 1.0)
    return panda.init("test", server=server, spool_dir=tmp_path / "spool", **options)


def _points(live: LiveServer, run_id: int, key: str) -> list[float]:
    with live.api() as api:
        reply = api.get(f"/api/runs/{run_id}/metrics", params={"key": key})
    reply.raise_for_status()
    return [float(value) for value in reply.json()["values"]]


@pytest.mark.parametrize(
    ("metrics", "step", "match"),
    [
        ({"loss": 1.0}, -1, "step"),
        ({"loss": 1.0}, 1.5, "step"),
        ({3: 1.0}, 0, "metric names must be str"),
        ({"loss": "low"}, 0, "must be a float"),
        ({"loss": torch.ones(2)}, 0, "0-dim tensor"),
        ({"": 1.0}, 0, "visible text"),
        ({"grad\tnorm": 1.0}, 0, "control characters"),
        ({"bad\ud800": 1.0}, 0, "visible text"),
    ],
)
def test_log_with_bad_argument_raises_value_error(
    tmp_path: Path, metrics: Any, step: Any, match: str
) -> None:
    run = _init(f"http://127.0.0.1:{free_port()}", tmp_path)
    try:
        with pytest.raises(ValueError, match=match):
            run.log(metrics, step=step)
    finally:
        run.finish(timeout_s=0.1)


def test_log_refuses_exactly_the_keys_the_server_refuses(
    running_server: LiveServer,
) -> None:
    # A key the server refuses costs the whole batch it travels in, so the
    # client must refuse it in log(), where the caller sees the error.
    keys = [
        "loss",
        "val/acc top-1",
        "\N{GREEK SMALL LETTER ALPHA}",
        "a" * 200,
        "a" * 201,
        " ",
        "\u00a0",
        "\t",
        "x\ty",
        "x\ny",
        "x\x7f",
        "\u200b",
    ]
    with running_server.api() as api:
        run_id = api.post("/api/runs", json={"name": "keys"}).json()["id"]
        verdicts = []
        for key in keys:
            body = {"points": [{"key": key, "step": 0, "value": 1.0}]}
            reply = api.post(f"/api/runs/{run_id}/metrics", json=body)
            try:
                run_module._check_key(key)
            except ValueError:
                client_accepts = False
            else:
                client_accepts = True
            verdicts.append((key, reply.status_code == 200, client_accepts))
    assert [(k, server) for k, server, _ in verdicts] == [
        (k, client) for k, _, client in verdicts
    ]
    assert sum(server for _, server, _ in verdicts) == 5


def test_log_with_numpy_scalars_accepts_them(tmp_path: Path) -> None:
    run = _init(f"http://127.0.0.1:{free_port()}", tmp_path)
    try:
        run.log({"a": np.float32(0.5), "b": np.array(2.0), "c": np.int64(3)}, step=0)
    finally:
        run.finish(timeout_s=0.1)


def test_log_of_a_reused_dict_keeps_the_values_of_the_call(
    tmp_path: Path, running_server: LiveServer
) -> None:
    run = _init(running_server.url, tmp_path)
    metrics = {"loss": 0.0}
    for step in range(50):
        metrics["loss"] = float(step)
        run.log(metrics, step=step)
    assert run.flush()
    assert run.id is not None

    assert _points(running_server, run.id, "loss") == [float(s) for s in range(50)]
    run.finish()


def test_log_while_sender_is_stuck_returns_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/runs":
            return httpx.Response(201, json=_RUN_REPLY)
        release.wait(30)
        raise httpx.ConnectError("gave up", request=request)

    def stuck_client(url: str, token: str | None) -> httpx.Client:
        return httpx.Client(base_url=url, transport=httpx.MockTransport(hang))

    monkeypatch.setattr(run_module, "_make_client", stuck_client)
    run = _init("http://127.0.0.1:9", tmp_path)
    logger = threading.Thread(
        target=lambda: [run.log({"loss": 0.5}, step=step) for step in range(5000)]
    )
    logger.start()
    logger.join(10)
    try:
        assert not logger.is_alive()
        assert run.id == 7
    finally:
        release.set()
        run.finish(timeout_s=0.5)


def test_log_while_server_down_spools_then_replays(
    tmp_path: Path,
    server_factory: Callable[..., LiveServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    with caplog.at_level(logging.WARNING, logger="panda"):
        run = _init(f"http://127.0.0.1:{port}", tmp_path, flush_interval_s=0.05)
        for step in range(300):
            run.log({"loss": 1.0 / (step + 1), "acc": torch.tensor(0.5)}, step=step)
        wait_for(run.spool_path.exists)
        assert run.id is None

        live = server_factory(port)
        assert run.flush(timeout_s=20)
    warnings = [record.getMessage() for record in caplog.records]
    assert sum("unreachable" in message for message in warnings) == 1
    assert any(str(run.spool_path) in message for message in warnings)

    assert run.id is not None
    assert len(_points(live, run.id, "loss")) == 300
    assert _points(live, run.id, "acc")[-1] == 0.5
    assert not run.spool_path.exists()
    run.finish()


def test_log_many_points_goes_out_in_batches(
    tmp_path: Path, running_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts: list[httpx.Request] = []
    make_client = run_module._make_client

    def counting_client(url: str, token: str | None) -> httpx.Client:
        client = make_client(url, token)
        client.event_hooks["request"].append(
            lambda request: (
                posts.append(request) if request.url.path.endswith("/metrics") else None
            )
        )
        return client

    monkeypatch.setattr(run_module, "_make_client", counting_client)
    run = _init(running_server.url, tmp_path)
    for step in range(2000):
        run.log({"loss": float(step), "lr": 0.1}, step=step)
    assert run.flush()
    assert run.id is not None
    assert len(_points(running_server, run.id, "loss")) == 2000
    assert 1 <= len(posts) <= 10
    run.finish()


def test_finish_flushes_and_marks_the_run(
    tmp_path: Path, running_server: LiveServer
) -> None:
    run = _init(running_server.url, tmp_path)
    for step in range(50):
        run.log({"loss": float("nan") if step == 3 else 1.0}, step=step)
    run.finish()
    assert run.id is not None
    values = _points(running_server, run.id, "loss")
    assert len(values) == 50
    with running_server.api() as api:
        assert api.get(f"/api/runs/{run.id}").json()["status"] == "finished"


def test_run_as_context_manager_on_error_marks_failed(
    tmp_path: Path, running_server: LiveServer
) -> None:
    run = _init(running_server.url, tmp_path)

    def crash() -> None:
        with run:
            run.log({"loss": 1.0}, step=0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        crash()
    with running_server.api() as api:
        reply = api.get(f"/api/runs/{run.id}").json()
    assert reply["status"] == "failed"
    assert reply["command"]
    assert reply["cwd"]


def test_heartbeat_with_pending_nudge_fills_inbox(
    tmp_path: Path, running_server: LiveServer
) -> None:
    run = _init(running_server.url, tmp_path)
    with running_server.api() as api:
        api.post(f"/api/runs/{run.id}/nudges", json={"param": "lr", "value": 0.01})
    taken: list[Any] = []
    wait_for(lambda: taken.extend(run.take_nudges()) or taken)
    assert taken[0].nudge.param == "lr"
    assert taken[0].nudge.value == 0.01
    assert run.take_nudges() == []
    run.finish()


def test_heartbeat_holding_taken_nudge_waits_and_brings_next_quickly(
    tmp_path: Path, running_server: LiveServer
) -> None:
    # A long wait, so the poll that holds the first nudge is still waiting.
    run = _init(running_server.url, tmp_path, heartbeat_wait_s=10.0)
    taken: list[Any] = []
    with running_server.api() as api:
        nudges_path = f"/api/runs/{run.id}/nudges"
        api.post(nudges_path, json={"param": "lr", "value": 0.01}).raise_for_status()
        wait_for(lambda: taken.extend(run.take_nudges()) or taken)
        time.sleep(0.1)
        beat_before = api.get(f"/api/runs/{run.id}").json()["heartbeat_at"]
        time.sleep(0.5)
        beat_after = api.get(f"/api/runs/{run.id}").json()["heartbeat_at"]

        api.post(nudges_path, json={"param": "lr", "value": 0.02}).raise_for_status()
        created = time.monotonic()
        while not (second := run.take_nudges()):
            assert time.monotonic() - created < 5, "second nudge never arrived"
            time.sleep(0.002)
        latency_s = time.monotonic() - created

    # The taken nudge is still pending (never acknowledged), yet the client
    # sent no heartbeat meanwhile: its poll waits past the nudge it holds.
    assert beat_after == beat_before
    assert [item.nudge.value for item in taken + second] == [0.01, 0.02]
    assert latency_s < 0.2
    run.finish()


def test_init_with_token_sends_bearer_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"detail": "bad token"})

    make_client = run_module._make_client

    def recording_client(url: str, token: str | None) -> httpx.Client:
        client = make_client(url, token)
        client._transport = httpx.MockTransport(refuse)
        return client

    monkeypatch.setattr(run_module, "_make_client", recording_client)
    with pytest.raises(panda.PandaError, match="bad token"):
        _init("http://127.0.0.1:9", tmp_path, token="s3cret")
    assert seen == ["Bearer s3cret"]


def test_init_resume_without_server_raises(tmp_path: Path) -> None:
    with pytest.raises(panda.ServerUnavailable, match="cannot resume run 4"):
        _init(f"http://127.0.0.1:{free_port()}", tmp_path, resume=4)


def test_init_resume_unknown_run_raises(
    tmp_path: Path, running_server: LiveServer
) -> None:
    with pytest.raises(panda.RunNotFound):
        _init(running_server.url, tmp_path, resume="41")
