"""The app as a whole: token, body limit, binding, CORS, the dashboard mount."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from panda.config import Settings
from panda.errors import PandaError
from panda.server.app import create_app
from tests.conftest import _test_client_class

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_create_app_non_loopback_without_token_refuses(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, host="0.0.0.0", token=None)
    with pytest.raises(PandaError, match="without a token"):
        create_app(settings)


def test_create_app_non_loopback_with_token_starts(tmp_path: Path) -> None:
    create_app(Settings(home=tmp_path, host="0.0.0.0", token="s3cret"))


def test_create_app_logs_url_without_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="panda")
    create_app(Settings(home=tmp_path))

    assert any("panda.db" in r.getMessage() for r in caplog.records)


def test_write_without_token_returns_401_and_reads_stay_open(
    db_url: str, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, db=db_url, token="s3cret")
    with _test_client_class()(create_app(settings)) as client:
        refused = client.post("/api/runs", json={})
        wrong = client.post(
            "/api/runs", json={}, headers={"Authorization": "Bearer nope"}
        )
        allowed = client.post(
            "/api/runs", json={}, headers={"Authorization": "Bearer s3cret"}
        )
        listed = client.get("/api/runs")

    assert refused.status_code == wrong.status_code == 401
    assert "Authorization: Bearer" in refused.json()["detail"]
    assert allowed.status_code == 201
    assert listed.status_code == 200


def test_body_over_limit_returns_413(db_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, db=db_url, max_body_bytes=1000)
    with _test_client_class()(create_app(settings)) as client:
        run = client.post("/api/runs", json={}).json()
        points = [{"key": "loss", "step": s, "value": 1.0} for s in range(100)]
        declared = client.post(
            f"/api/runs/{run['id']}/metrics", json={"points": points}
        )
        chunked = client.post(
            f"/api/runs/{run['id']}/metrics",
            content=iter([b'{"points": [', b" " * 2000, b"]}"]),
            headers={"content-type": "application/json"},
        )

    assert declared.status_code == chunked.status_code == 413
    assert "1000 bytes" in declared.json()["detail"]


def test_cors_headers_only_when_configured(db_url: str, tmp_path: Path) -> None:
    origin = {"Origin": "http://example.test"}
    plain = Settings(home=tmp_path, db=db_url)
    with _test_client_class()(create_app(plain)) as client:
        assert (
            "access-control-allow-origin"
            not in client.get("/api/runs", headers=origin).headers
        )

    allowed = Settings(home=tmp_path, db=db_url, cors_origins=["http://example.test"])
    with _test_client_class()(create_app(allowed)) as client:
        headers = client.get("/api/runs", headers=origin).headers
        assert headers["access-control-allow-origin"] == "http://example.test"


def test_api_routes_win_over_static_mount(server_client: TestClient) -> None:
    response = server_client.get("/api/runs")
    assert response.status_code == 200
    assert response.json() == []


def test_openapi_lists_every_contract_path(server_client: TestClient) -> None:
    paths = server_client.get("/openapi.json").json()["paths"]
    expected = {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/heartbeat",
        "/api/runs/{run_id}/metrics",
        "/api/runs/{run_id}/stream",
        "/api/stream",
        "/api/runs/{run_id}/nudges",
        "/api/runs/{run_id}/nudges/{nudge_id}",
        "/api/runs/{run_id}/nudges/{nudge_id}/cancel",
        "/api/runs/{run_id}/nudges/{nudge_id}/ack",
        "/api/runs/{run_id}/nudges/{nudge_id}/undo",
        "/api/runs/{run_id}/checkpoints",
        "/api/runs/{run_id}/checkpoints/{checkpoint_id}",
        "/api/runs/{run_id}/branches",
        "/api/runs/{run_id}/resume",
        "/api/runs/{run_id}/fork",
    }
    assert expected <= set(paths)


def test_write_behind_a_held_sqlite_lock_is_a_503_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from panda.store import db

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "panda.db"
    settings = Settings(home=tmp_path, db=f"sqlite:///{path}")
    body = {"points": [{"key": "loss", "step": 1, "value": 0.5}]}
    with _test_client_class()(create_app(settings)) as client:
        run = client.post("/api/runs", json={"name": "busy"}).json()["id"]
        client.post(f"/api/runs/{run}/metrics", json={"points": [
            {"key": "loss", "step": 0, "value": 1.0}]})  # fmt: skip

        other_writer = sqlite3.connect(path, isolation_level=None)
        other_writer.execute("BEGIN IMMEDIATE")
        refused = client.post(f"/api/runs/{run}/metrics", json=body)
        other_writer.execute("ROLLBACK")
        other_writer.close()
        retried = client.post(f"/api/runs/{run}/metrics", json=body)
        read = client.get(f"/api/runs/{run}/metrics", params={"key": "loss"}).json()

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "busy with another write" in refused.json()["detail"]
    assert retried.status_code == 200
    assert (read["steps"], read["values"]) == ([0, 1], [1.0, 0.5])


def test_api_pages_need_no_internet(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, db=f"sqlite:///{tmp_path / 'panda.db'}")
    with _test_client_class()(create_app(settings)) as client:
        docs = client.get("/docs")
        redoc = client.get("/redoc")

    assert docs.status_code == 200
    assert "/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "http" not in docs.text.replace("http-equiv", "")
    # ReDoc would load its script and fonts from CDNs: not served at all.
    assert redoc.status_code == 404
