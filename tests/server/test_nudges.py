"""Routes for nudges: validation, states, acknowledgement, undo."""

from __future__ import annotations

import pytest

from tests.server.conftest import Api


def test_create_nudge_returns_pending(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"], "momentum", 0.9)

    assert (nudge["status"], nudge["action"], nudge["param"]) == (
        "pending",
        "set",
        "momentum",
    )
    assert api.ok("GET", f"/runs/{run['id']}/nudges/{nudge['id']}") == nudge


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("wd", 0.1, "must be one of 'lr', 'momentum', got 'wd'"),
        ("lr", 0, "lr must be > 0"),
        ("lr", -1, "lr must be > 0, got -1"),
        ("lr", "Infinity", "lr must be a finite number"),
        ("lr", "NaN", "lr must be a finite number"),
        ("lr", 1e-320, "lr must be between 1e-12 and 10000"),
        ("lr", True, "must be a number, not true or false"),
        ("lr", 1e308, "lr must be between 1e-12 and 10000"),
        ("momentum", 1.0, "momentum must be in [0, 1)"),
        ("momentum", -0.1, "momentum must be in [0, 1)"),
    ],
)
def test_create_nudge_invalid_returns_422(
    api: Api, param: str, value: object, message: str
) -> None:
    run = api.run()
    body = {"param": param, "value": value}
    detail = api.ok("POST", f"/runs/{run['id']}/nudges", 422, json=body)["detail"]
    assert message in detail


def test_create_nudge_json_infinity_literal_returns_422(api: Api) -> None:
    run = api.run()
    response = api.client.post(
        f"/api/runs/{run['id']}/nudges",
        content=b'{"param": "lr", "value": Infinity}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "finite" in response.json()["detail"] or "JSON" in response.json()["detail"]


def test_create_nudge_on_finished_run_returns_409(api: Api) -> None:
    run = api.run()
    api.ok("PATCH", f"/runs/{run['id']}", json={"status": "finished"})

    detail = api.ok(
        "POST", f"/runs/{run['id']}/nudges", 409, json={"param": "lr", "value": 0.1}
    )["detail"]
    assert "not running" in detail


def test_create_nudge_unknown_run_returns_404(api: Api) -> None:
    body = {"param": "lr", "value": 0.1}
    assert api.ok("POST", "/runs/7/nudges", 404, json=body) == {
        "detail": "run 7 not found"
    }


def test_read_nudge_unknown_returns_404(api: Api) -> None:
    run = api.run()
    assert "nudge 9" in api.ok("GET", f"/runs/{run['id']}/nudges/9", 404)["detail"]


def test_cancel_nudge_pending_then_again_returns_409(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"])
    path = f"/runs/{run['id']}/nudges/{nudge['id']}/cancel"

    assert api.ok("POST", path)["status"] == "cancelled"
    assert "only a pending nudge" in api.ok("POST", path, 409)["detail"]


def test_ack_nudge_applied_records_step_and_old_value(api: Api) -> None:
    run = api.run()
    checkpoint = api.checkpoint(run["id"], 10, reason="nudge")
    nudge = api.nudge(run["id"])

    applied = api.apply(run["id"], nudge["id"], 10, checkpoint["id"])

    assert applied["status"] == "applied"
    assert (applied["applied_step"], applied["old_value"]) == (10, 0.1)
    assert applied["checkpoint"] == checkpoint["id"]
    history = api.ok("GET", f"/runs/{run['id']}/nudges", params={"status": "applied"})
    assert [n["id"] for n in history] == [nudge["id"]]


def test_ack_nudge_resent_same_answer_is_idempotent(api: Api) -> None:
    run = api.run()
    checkpoint = api.checkpoint(run["id"], 10)
    nudge = api.nudge(run["id"])
    first = api.apply(run["id"], nudge["id"], 10, checkpoint["id"])

    assert api.apply(run["id"], nudge["id"], 10, checkpoint["id"]) == first


def test_ack_nudge_cancelled_returns_409(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"])
    api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/cancel")

    body = {"status": "applied", "step": 3}
    api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/ack", 409, json=body)


def test_ack_nudge_applied_without_step_returns_422(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"])
    detail = api.ok(
        "POST",
        f"/runs/{run['id']}/nudges/{nudge['id']}/ack",
        422,
        json={"status": "applied"},
    )["detail"]
    assert "body.step" in detail


def test_ack_nudge_rejected_keeps_reason(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"], "momentum", 0.5)
    body = {"status": "rejected", "reason": "OneCycleLR cycles momentum"}
    rejected = api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/ack", json=body)

    assert (rejected["status"], rejected["reason"]) == ("rejected", body["reason"])


def test_undo_nudge_pending_set_returns_409(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"])
    detail = api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/undo", 409)
    assert "only an applied set nudge" in detail["detail"]


def test_undo_nudge_applied_creates_branch_on_ack(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(20))
    checkpoint = api.checkpoint(run["id"], 10, reason="nudge")
    nudge = api.nudge(run["id"])
    api.apply(run["id"], nudge["id"], 10, checkpoint["id"])

    undo = api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/undo", 201)
    assert (undo["action"], undo["undoes"], undo["status"]) == (
        "undo",
        nudge["id"],
        "pending",
    )
    assert (undo["value"], undo["old_value"]) == (0.1, 0.01)
    api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/undo", 409)

    acked = api.apply(run["id"], undo["id"], 10, checkpoint["id"])
    branches = api.ok("GET", f"/runs/{run['id']}/branches")
    new = branches[-1]
    assert acked["branch"] == new["id"]
    assert (new["reason"], new["start_step"], new["current"]) == ("undo", 10, True)
    assert new["parent"] == checkpoint["branch"]
    assert api.ok("GET", f"/runs/{run['id']}")["branch"] == new["id"]


def test_undo_nudge_names_siblings_applied_at_same_checkpoint(api: Api) -> None:
    run = api.run()
    checkpoint = api.checkpoint(run["id"], 10)
    first = api.nudge(run["id"], "lr", 0.01)
    second = api.nudge(run["id"], "momentum", 0.8)
    api.apply(run["id"], first["id"], 10, checkpoint["id"])
    api.apply(run["id"], second["id"], 10, checkpoint["id"])

    undo = api.ok("POST", f"/runs/{run['id']}/nudges/{first['id']}/undo", 201)

    assert undo["note"] == (
        f"undo nudge {first['id']}; also takes back nudge {second['id']}, "
        "applied at the same step"
    )
