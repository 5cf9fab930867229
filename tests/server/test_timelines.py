"""Current lines and abandoned tails across resume, undo and fork."""

from __future__ import annotations

from tests.server.conftest import Api


def test_resume_from_latest_checkpoint_starts_new_line(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(30))
    api.checkpoint(run["id"], 10)
    checkpoint = api.checkpoint(run["id"], 20)
    api.ok("PATCH", f"/runs/{run['id']}", json={"status": "failed"})

    plan = api.ok("POST", f"/runs/{run['id']}/resume", json={})
    api.log(run["id"], "loss", range(20, 25), branch=plan["branch"])

    assert plan["checkpoint"]["id"] == checkpoint["id"]
    assert plan["run"]["status"] == "running"
    assert plan["replay"] == []
    assert api.line(run["id"]) == list(range(25))
    tails = api.ok("GET", f"/runs/{run['id']}/metrics/tails", params={"key": "loss"})
    assert [(t["branch"], t["steps"]) for t in tails] == [
        (run["branch"], list(range(20, 30)))
    ]


def test_resume_replays_nudge_applied_after_its_checkpoint(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(15))
    api.checkpoint(run["id"], 5)
    checkpoint = api.checkpoint(run["id"], 10, reason="nudge")
    nudge = api.nudge(run["id"])
    api.apply(run["id"], nudge["id"], 10, checkpoint["id"])

    plan = api.ok("POST", f"/runs/{run['id']}/resume", json={})
    assert plan["checkpoint"]["id"] == checkpoint["id"]
    assert [n["id"] for n in plan["replay"]] == [nudge["id"]]

    older = api.ok("GET", f"/runs/{run['id']}/checkpoints")[0]
    plan = api.ok("POST", f"/runs/{run['id']}/resume", json={"checkpoint": older["id"]})
    assert plan["replay"] == []
    assert api.line(run["id"]) == list(range(5))


def test_resume_without_checkpoint_returns_404(api: Api) -> None:
    run = api.run()
    detail = api.ok("POST", f"/runs/{run['id']}/resume", 404, json={})["detail"]
    assert "no checkpoint" in detail


def test_resume_deleted_checkpoint_returns_404(api: Api) -> None:
    run = api.run()
    checkpoint = api.checkpoint(run["id"], 5)
    api.ok("DELETE", f"/runs/{run['id']}/checkpoints/{checkpoint['id']}")

    body = {"checkpoint": checkpoint["id"]}
    detail = api.ok("POST", f"/runs/{run['id']}/resume", 404, json=body)["detail"]
    assert "deleted" in detail


def test_undo_line_leaves_nudged_tail_abandoned(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(10))
    checkpoint = api.checkpoint(run["id"], 10, reason="nudge")
    nudge = api.nudge(run["id"])
    api.apply(run["id"], nudge["id"], 10, checkpoint["id"])
    api.log(run["id"], "loss", range(10, 16))

    undo = api.ok("POST", f"/runs/{run['id']}/nudges/{nudge['id']}/undo", 201)
    branch = api.apply(run["id"], undo["id"], 10, checkpoint["id"])["branch"]
    api.log(run["id"], "loss", [10, 11])

    assert api.line(run["id"]) == list(range(12))
    own = api.ok(
        "GET", f"/runs/{run['id']}/metrics", params={"key": "loss", "branch": branch}
    )
    assert own["steps"] == [10, 11]
    tails = api.ok("GET", f"/runs/{run['id']}/metrics/tails", params={"key": "loss"})
    assert [t["steps"] for t in tails] == [list(range(10, 16))]

    plan = api.ok("POST", f"/runs/{run['id']}/resume", json={})
    assert plan["replay"] == []


def test_fork_line_starts_with_parent_points(api: Api) -> None:
    run = api.run(config={"lr": 0.1, "batch": 32}, command=["python", "train.py"])
    api.log(run["id"], "loss", range(30))
    checkpoint = api.checkpoint(run["id"], 20)

    fork = api.ok(
        "POST",
        f"/runs/{run['id']}/fork",
        201,
        json={"checkpoint": checkpoint["id"], "config": {"lr": 0.5}},
    )
    api.log(fork["id"], "loss", range(20, 23))

    assert (fork["parent_run"], fork["parent_step"]) == (run["id"], 20)
    assert fork["config"] == {"lr": 0.5, "batch": 32}
    assert fork["command"] == ["python", "train.py"]
    assert api.line(fork["id"]) == list(range(23))
    assert api.line(run["id"]) == list(range(30))
    root = api.ok("GET", f"/runs/{fork['id']}/branches")[0]
    assert (root["reason"], root["parent"], root["start_step"]) == (
        "fork",
        run["branch"],
        20,
    )


def test_fork_unknown_checkpoint_returns_404(api: Api) -> None:
    run = api.run()
    detail = api.ok("POST", f"/runs/{run['id']}/fork", 404, json={"checkpoint": 4})
    assert "checkpoint 4" in detail["detail"]
