"""Routes for sweeps: create, register trials, rank, stop, suggest; α for a run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Api

SPACE = {
    "lr": {"log_uniform": [1e-4, 1.0]},
    "momentum": {"one_minus_log_uniform": [0.8, 0.999]},
}


def _sweep(api: Api, **settings: Any) -> dict[str, Any]:
    config = {
        "sweep": {"objective": "val/loss", "trials": 8, **settings},
        "space": SPACE,
    }
    result: dict[str, Any] = api.ok(
        "POST", "/sweeps", 201, json={"name": "digits", "config": config}
    )
    return result


def _finish(api: Api, sweep: int, number: int, objective: float | str) -> None:
    body = {"status": "finished", "objective": objective}
    api.ok("PATCH", f"/sweeps/{sweep}/trials/{number}", json=body)


def test_create_sweep_stores_normalised_config(api: Api) -> None:
    sweep = _sweep(api, strategy="random")

    assert sweep["status"] == "running"
    assert sweep["config"]["sweep"]["strategy"] == "random"
    assert sweep["config"]["space"]["lr"] == {"log_uniform": [1e-4, 1.0]}
    assert sweep["trials"] == []
    assert [s["id"] for s in api.ok("GET", "/sweeps")] == [sweep["id"]]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sweep": {"strategy": "annealing"}, "space": SPACE}, "unknown strategy"),
        ({"sweep": {"trials": 0}, "space": SPACE}, "sweep.trials"),
        ({"space": {"lr": {"log_uniform": [0, 1]}}}, "low > 0"),
        ({"sweep": {}}, "no [space] table"),
    ],
)
def test_create_sweep_with_bad_config_returns_422(
    api: Api, config: dict[str, Any], message: str
) -> None:
    response = api.client.post("/api/sweeps", json={"config": config})

    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_register_trials_stores_distinct_pending_points(api: Api) -> None:
    sweep = _sweep(api, strategy="random")
    first = api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 3})
    second = api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 3})

    numbers = [trial["number"] for trial in first + second]
    points = {trial["params"]["lr"] for trial in first + second}
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert len(points) == 6
    assert {trial["status"] for trial in first + second} == {"pending"}


def test_register_trials_stops_at_the_budget(api: Api) -> None:
    sweep = _sweep(api, strategy="random", trials=2)

    created = api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 5})
    more = api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={})

    assert len(created) == 2
    assert more == []


def test_register_trial_with_params_outside_space_returns_422(api: Api) -> None:
    sweep = _sweep(api)
    body = {"params": {"lr": 5.0, "momentum": 0.9}}

    response = api.client.post(f"/api/sweeps/{sweep['id']}/trials", json=body)

    assert response.status_code == 422
    assert "outside" in response.json()["detail"]


def test_read_sweep_ranks_finished_trials_best_first(api: Api) -> None:
    sweep = _sweep(api, strategy="random")
    api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 4})
    _finish(api, sweep["id"], 1, 0.5)
    _finish(api, sweep["id"], 2, 0.2)
    _finish(api, sweep["id"], 3, "Infinity")

    found = api.ok("GET", f"/sweeps/{sweep['id']}")

    ranked = [(t["number"], t["rank"], t["status"]) for t in found["trials"]]
    assert ranked == [
        (2, 1, "finished"),
        (1, 2, "finished"),
        (4, None, "pending"),
        (3, None, "failed"),
    ]
    assert found["best_objective"] == 0.2
    assert found["trial_counts"] == {"finished": 2, "pending": 1, "failed": 1}


def test_finish_trial_without_objective_takes_run_last_value(api: Api) -> None:
    sweep = _sweep(api)
    api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={})
    run = api.run(name="trial")
    api.ok(
        "POST",
        f"/runs/{run['id']}/metrics",
        json={
            "points": [
                {"key": "val/loss", "step": 3, "value": 0.7},
                {"key": "val/loss", "step": 9, "value": 0.4},
            ]
        },
    )

    trial = api.ok(
        "PATCH",
        f"/sweeps/{sweep['id']}/trials/1",
        json={"run": run["id"], "status": "finished"},
    )

    assert (trial["run"], trial["objective"]) == (run["id"], 0.4)


def test_update_trial_of_unknown_sweep_or_run_returns_404(api: Api) -> None:
    sweep = _sweep(api)
    api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={})

    missing_trial = api.client.patch(f"/api/sweeps/{sweep['id']}/trials/9", json={})
    missing_run = api.client.patch(
        f"/api/sweeps/{sweep['id']}/trials/1", json={"run": 999}
    )
    missing_sweep = api.client.get("/api/sweeps/999")

    assert missing_trial.status_code == 404
    assert "no trial 9" in missing_trial.json()["detail"]
    assert missing_run.status_code == 404
    assert missing_sweep.status_code == 404


def test_stop_pending_trial_stops_it_and_twice_returns_409(api: Api) -> None:
    sweep = _sweep(api)
    api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 2})
    api.ok("PATCH", f"/sweeps/{sweep['id']}/trials/2", json={"status": "running"})

    pending = api.ok("POST", f"/sweeps/{sweep['id']}/trials/1/stop")
    running = api.ok("POST", f"/sweeps/{sweep['id']}/trials/2/stop")
    again = api.client.post(f"/api/sweeps/{sweep['id']}/trials/1/stop")

    assert (pending["status"], pending["stop_requested"]) == ("stopped", True)
    assert (running["status"], running["stop_requested"]) == ("running", True)
    assert again.status_code == 409


def test_suggest_bayesian_after_finished_trials_includes_expected_improvement(
    api: Api,
) -> None:
    sweep = _sweep(api, strategy="bayesian", options={"initial": 3, "candidates": 200})
    api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 3})
    for number, objective in ((1, 0.9), (2, 0.3), (3, 0.6)):
        _finish(api, sweep["id"], number, objective)

    found = api.ok("GET", f"/sweeps/{sweep['id']}/suggest", params={"n": 2})
    stored = api.ok("GET", f"/sweeps/{sweep['id']}")

    assert found["strategy"] == "bayesian"
    assert len(found["suggestions"]) == 2
    for item in found["suggestions"]:
        assert item["expected_improvement"] >= 0
        assert 1e-4 <= item["params"]["lr"] <= 1.0
    assert len(stored["trials"]) == 3  # a preview stores nothing


def test_suggest_random_has_no_expected_improvement(api: Api) -> None:
    sweep = _sweep(api, strategy="random")

    found = api.ok("GET", f"/sweeps/{sweep['id']}/suggest")

    assert [item["expected_improvement"] for item in found["suggestions"]] == [None]


def test_suggest_with_n_out_of_range_returns_422(api: Api) -> None:
    sweep = _sweep(api)

    response = api.client.get(f"/api/sweeps/{sweep['id']}/suggest", params={"n": 0})

    assert response.status_code == 422
    assert "query.n" in response.json()["detail"]


def test_coarse_to_fine_sweep_shows_its_rounds(api: Api) -> None:
    options = {"trials_per_round": 2, "top_k": 1}
    sweep = _sweep(api, strategy="coarse_to_fine", options=options)
    api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 2})
    _finish(api, sweep["id"], 1, 0.5)
    _finish(api, sweep["id"], 2, 0.2)
    nxt = api.ok("POST", f"/sweeps/{sweep['id']}/trials", 201, json={"count": 2})

    found = api.ok("GET", f"/sweeps/{sweep['id']}")

    assert [trial["round"] for trial in nxt] == [1, 1]
    assert [r["index"] for r in found["rounds"]] == [0, 1]
    narrowed = found["rounds"][1]["space"]["lr"]["log_uniform"]
    assert narrowed[1] - narrowed[0] < 1.0 - 1e-4


def _finished_run(api: Api, lr: float, loss: float, model: str = "cnn") -> int:
    run = api.run(name=f"lr {lr}", config={"lr": lr, "model": model})
    api.log(run["id"], "x", [0])
    api.ok(
        "POST",
        f"/runs/{run['id']}/metrics",
        json={"points": [{"key": "val/loss", "step": 1, "value": loss}]},
    )
    api.ok("PATCH", f"/runs/{run['id']}", json={"status": "finished"})
    return int(run["id"])


def test_suggest_lr_uses_finished_runs_of_same_model(api: Api) -> None:
    for lr, loss in ((1e-3, 0.9), (1e-2, 0.4), (1e-1, 0.6)):
        _finished_run(api, lr, loss)
    _finished_run(api, 0.5, 0.01, model="other")
    babysat = api.run(name="babysat", config={"lr": 0.05, "model": "cnn"})

    found = api.ok("GET", f"/runs/{babysat['id']}/suggest-lr")

    assert len(found["similar"]) == 3
    assert found["best"]["lr"] == 1e-2
    assert 1e-4 <= found["lr"] <= 1.0
    assert found["expected_improvement"] >= 0
    assert "Gaussian process on log10 α" in found["explanation"]


def test_suggest_lr_with_too_few_runs_returns_409(api: Api) -> None:
    _finished_run(api, 1e-2, 0.4)
    babysat = api.run(name="babysat", config={"lr": 0.05, "model": "cnn"})

    response = api.client.get(f"/api/runs/{babysat['id']}/suggest-lr")

    assert response.status_code == 409
    assert "at least 2" in response.json()["detail"]
