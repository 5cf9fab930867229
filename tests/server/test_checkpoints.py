"""Routes for the checkpoint index."""

from __future__ import annotations

import pytest

from tests.server.conftest import SHA, Api


def test_create_checkpoint_stores_path_as_given(api: Api) -> None:
    run = api.run()
    path = "../../etc/passwd\\weird path ✓.pt"
    checkpoint = api.checkpoint(run["id"], 5, path=path)

    assert checkpoint["path"] == path
    assert checkpoint["branch"] == run["branch"]
    assert api.ok("GET", f"/runs/{run['id']}/checkpoints") == [checkpoint]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sha256": "xyz"}, "body.sha256"),
        ({"step": -1}, "body.step"),
        ({"size_bytes": -1}, "body.size_bytes"),
        ({"path": ""}, "body.path"),
        ({"reason": "whim"}, "body.reason"),
    ],
)
def test_create_checkpoint_invalid_returns_422(
    api: Api, change: dict[str, object], field: str
) -> None:
    run = api.run()
    body = {"step": 1, "path": "/c.pt", "size_bytes": 1, "sha256": SHA, **change}
    detail = api.ok("POST", f"/runs/{run['id']}/checkpoints", 422, json=body)
    assert field in detail["detail"]


def test_delete_checkpoint_unreferenced_marks_deleted(api: Api) -> None:
    run = api.run()
    checkpoint = api.checkpoint(run["id"], 5)

    deleted = api.ok("DELETE", f"/runs/{run['id']}/checkpoints/{checkpoint['id']}")

    assert deleted["deleted"] is True


def test_delete_checkpoint_of_a_nudge_returns_409(api: Api) -> None:
    run = api.run()
    checkpoint = api.checkpoint(run["id"], 5, reason="nudge")
    nudge = api.nudge(run["id"])
    api.apply(run["id"], nudge["id"], 5, checkpoint["id"])

    detail = api.ok("DELETE", f"/runs/{run['id']}/checkpoints/{checkpoint['id']}", 409)
    assert f"nudge {nudge['id']}" in detail["detail"]


def test_delete_checkpoint_unknown_returns_404(api: Api) -> None:
    run = api.run()
    detail = api.ok("DELETE", f"/runs/{run['id']}/checkpoints/3", 404)
    assert "checkpoint 3" in detail["detail"]
