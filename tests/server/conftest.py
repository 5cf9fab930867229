"""Helpers for route tests: create a run, log points, take a checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

SHA = "0" * 64


class Api:
    """Thin helpers over the TestClient that assert the expected status."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api{path}", **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def run(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("POST", "/runs", 201, json=body)
        return result

    def log(self, run: int, key: str, steps: range | list[int], **body: Any) -> Any:
        points = [{"key": key, "step": s, "value": float(s)} for s in steps]
        return self.ok("POST", f"/runs/{run}/metrics", json={"points": points, **body})

    def checkpoint(self, run: int, step: int, **body: Any) -> dict[str, Any]:
        payload = {
            "step": step,
            "path": f"/ckpt/{step}.pt",
            "size_bytes": 1,
            "sha256": SHA,
        }
        result: dict[str, Any] = self.ok(
            "POST", f"/runs/{run}/checkpoints", 201, json={**payload, **body}
        )
        return result

    def nudge(self, run: int, param: str = "lr", value: float = 0.01) -> dict[str, Any]:
        body = {"param": param, "value": value}
        result: dict[str, Any] = self.ok("POST", f"/runs/{run}/nudges", 201, json=body)
        return result

    def apply(self, run: int, nudge: int, step: int, checkpoint: int) -> dict[str, Any]:
        body = {
            "status": "applied",
            "step": step,
            "old_value": 0.1,
            "checkpoint": checkpoint,
        }
        result: dict[str, Any] = self.ok(
            "POST", f"/runs/{run}/nudges/{nudge}/ack", json=body
        )
        return result

    def line(self, run: int, key: str = "loss") -> list[int]:
        steps: list[int] = self.ok("GET", f"/runs/{run}/metrics", params={"key": key})[
            "steps"
        ]
        return steps


@pytest.fixture
def api(server_client: TestClient) -> Api:
    """Return request helpers bound to the test server."""
    return Api(server_client)
