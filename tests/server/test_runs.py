"""Routes for runs: create, list, read, end, heartbeat, crash detection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panda.config import Settings
from panda.protocol import HEARTBEAT_HELD_MAX
from panda.server.routes import runs as routes_runs
from tests.conftest import _test_client_class
from tests.server.conftest import Api


def test_create_run_returns_running_run_with_root_branch(api: Api) -> None:
    run = api.run(name="digits", config={"lr": 0.1})

    assert run["status"] == "running"
    assert run["config"] == {"lr": 0.1}
    branches = api.ok("GET", f"/runs/{run['id']}/branches")
    assert [(b["reason"], b["start_step"], b["current"]) for b in branches] == [
        ("start", 0, True)
    ]
    assert run["branch"] == branches[0]["id"]


def test_list_runs_shows_last_step_and_values_newest_first(api: Api) -> None:
    first = api.run(name="a")
    second = api.run(name="b")
    api.ok(
        "POST",
        f"/runs/{first['id']}/metrics",
        json={
            "points": [
                {"key": "loss", "step": 3, "value": "NaN"},
                {"key": "acc", "step": 4, "value": 0.5},
            ]
        },
    )

    listed = api.ok("GET", "/runs")

    assert [run["id"] for run in listed] == [second["id"], first["id"]]
    assert listed[1]["last_step"] == 4
    assert listed[1]["last_values"] == {"loss": "NaN", "acc": 0.5}


def test_list_runs_status_filter_selects_and_validates(api: Api) -> None:
    run = api.run()
    api.ok("PATCH", f"/runs/{run['id']}", json={"status": "finished"})
    api.run()

    assert [r["id"] for r in api.ok("GET", "/runs", params={"status": "finished"})] == [
        run["id"]
    ]
    detail = api.ok("GET", "/runs", 422, params={"status": "bogus"})["detail"]
    assert "query.status" in detail


def test_read_run_unknown_returns_404(api: Api) -> None:
    assert api.ok("GET", "/runs/7", 404) == {"detail": "run 7 not found"}


@pytest.mark.parametrize("path", ["/runs/abc", "/runs/0", f"/runs/{2**64}"])
def test_read_run_bad_id_returns_422(api: Api, path: str) -> None:
    assert "path.run_id" in api.ok("GET", path, 422)["detail"]


def test_update_run_finished_sets_finished_at(api: Api) -> None:
    run = api.run()
    ended = api.ok("PATCH", f"/runs/{run['id']}", json={"status": "finished"})

    assert ended["status"] == "finished"
    assert ended["finished_at"] is not None


def test_update_run_bad_status_returns_422(api: Api) -> None:
    run = api.run()
    detail = api.ok("PATCH", f"/runs/{run['id']}", 422, json={"status": "crashed"})
    assert "body.status" in detail["detail"]


def test_create_run_malformed_json_returns_422(api: Api) -> None:
    response = api.client.post(
        "/api/runs", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


def test_create_run_unknown_field_returns_422(api: Api) -> None:
    detail = api.ok("POST", "/runs", 422, json={"nmae": "x"})["detail"]
    assert "body.nmae" in detail


def test_heartbeat_without_nudges_returns_empty_pending(api: Api) -> None:
    run = api.run()
    reply = api.ok("POST", f"/runs/{run['id']}/heartbeat", json={"step": 3})

    assert reply == {"status": "running", "pending": []}


def test_heartbeat_long_poll_returns_when_nudge_arrives(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the fallback recheck out of reach, only the hub can wake the poll.
    monkeypatch.setattr(routes_runs, "HEARTBEAT_RECHECK_S", 60.0)
    run = api.run()
    replies: list[dict[str, Any]] = []

    def wait() -> None:
        replies.append(api.ok("POST", f"/runs/{run['id']}/heartbeat?wait_s=20"))

    waiter = threading.Thread(target=wait)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.5)
    nudge = api.nudge(run["id"], value=0.05)
    waiter.join(25)

    assert replies
    assert [n["id"] for n in replies[0]["pending"]] == [nudge["id"]]
    # Woken by the nudge, well before the 20 s the poll was allowed to wait.
    assert time.monotonic() - started < 15


def _add_nudge(api: Api, run_id: int, held_id: int) -> list[int]:
    return [held_id, api.nudge(run_id, value=0.05)["id"]]


def _cancel_held(api: Api, run_id: int, held_id: int) -> list[int]:
    api.ok("POST", f"/runs/{run_id}/nudges/{held_id}/cancel")
    return []


def _reject_held(api: Api, run_id: int, held_id: int) -> list[int]:
    body = {"status": "rejected", "reason": "scheduler owns lr"}
    api.ok("POST", f"/runs/{run_id}/nudges/{held_id}/ack", json=body)
    return []


@pytest.mark.parametrize(
    "change",
    [_add_nudge, _cancel_held, _reject_held],
    ids=["new nudge", "held cancelled", "held rejected"],
)
def test_heartbeat_holding_every_pending_nudge_waits_for_a_change(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Api, int, int], list[int]],
) -> None:
    # With the fallback recheck out of reach, only the hub can wake the poll.
    monkeypatch.setattr(routes_runs, "HEARTBEAT_RECHECK_S", 60.0)
    run = api.run()
    held = api.nudge(run["id"])
    replies: list[dict[str, Any]] = []

    def wait() -> None:
        path = f"/runs/{run['id']}/heartbeat?wait_s=20"
        replies.append(api.ok("POST", path, json={"held": [held["id"]]}))

    waiter = threading.Thread(target=wait)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.5)
    assert not replies, "the poll answered although nothing changed"

    expected = change(api, run["id"], held["id"])
    waiter.join(25)
    assert replies
    assert [n["id"] for n in replies[0]["pending"]] == expected
    # Woken by the change, well before the 20 s the poll was allowed to wait.
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    "body", [None, {"step": 4}, {"held": []}], ids=["no body", "no held", "held empty"]
)
def test_heartbeat_not_holding_pending_nudge_returns_at_once(
    api: Api, body: dict[str, Any] | None
) -> None:
    run = api.run()
    nudge = api.nudge(run["id"])
    started = time.monotonic()
    reply = api.ok("POST", f"/runs/{run['id']}/heartbeat?wait_s=20", json=body)

    assert [n["id"] for n in reply["pending"]] == [nudge["id"]]
    assert time.monotonic() - started < 15


def test_heartbeat_holding_nudge_no_longer_pending_returns_at_once(api: Api) -> None:
    run = api.run()
    nudge = api.nudge(run["id"])
    api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/cancel")
    started = time.monotonic()
    path = f"/runs/{run['id']}/heartbeat?wait_s=20"
    reply = api.ok("POST", path, json={"held": [nudge["id"]]})

    assert reply["pending"] == []
    assert time.monotonic() - started < 15


def test_heartbeat_too_many_held_returns_422(api: Api) -> None:
    run = api.run()
    held = list(range(1, HEARTBEAT_HELD_MAX + 2))
    path = f"/runs/{run['id']}/heartbeat"

    assert "body.held" in api.ok("POST", path, 422, json={"held": held})["detail"]


def test_heartbeat_negative_wait_returns_422(api: Api) -> None:
    run = api.run()
    assert (
        "query.wait_s"
        in api.ok("POST", f"/runs/{run['id']}/heartbeat?wait_s=-1", 422)["detail"]
    )


def test_silent_run_is_marked_crashed_then_revived_by_heartbeat(
    db_url: str, tmp_path: Path
) -> None:
    from panda.server.app import create_app

    settings = Settings(home=tmp_path, db=db_url, heartbeat_timeout_s=0.2)
    with _test_client_class()(create_app(settings)) as client:
        api = Api(client)
        run = api.run()
        deadline = time.monotonic() + 10
        while api.ok("GET", f"/runs/{run['id']}")["status"] != "crashed":
            assert time.monotonic() < deadline, "run never marked crashed"
            time.sleep(0.05)

        api.ok("POST", f"/runs/{run['id']}/heartbeat")
        assert api.ok("GET", f"/runs/{run['id']}")["status"] in ("running", "crashed")
        api.log(run["id"], "loss", [1])
        reply = api.ok("POST", f"/runs/{run['id']}/heartbeat")
        assert reply["status"] == "running"
