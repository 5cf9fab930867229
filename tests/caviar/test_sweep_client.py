"""panda.init() under a sweep: the run takes the trial's params and links the trial."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import panda


def test_init_in_sweep_tags_run_and_links_trial(
    live_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = {"lr": {"log_uniform": [1e-3, 1.0]}}
    with httpx.Client(base_url=live_server) as http:
        sweep = http.post("/api/sweeps", json={"config": {"space": space}}).json()
        (trial,) = http.post(f"/api/sweeps/{sweep['id']}/trials", json={}).json()
    monkeypatch.setenv("PANDA_SWEEP", str(sweep["id"]))
    monkeypatch.setenv("PANDA_TRIAL", str(trial["number"]))
    monkeypatch.setenv("PANDA_PARAMS", f'{{"lr": {trial["params"]["lr"]!r}}}')

    run = panda.init(
        "trial",
        config={"lr": 0.5, "epochs": 2},
        server=live_server,
        spool_dir=tmp_path,
        heartbeat_wait_s=0.5,
    )
    run.finish()

    with httpx.Client(base_url=live_server) as http:
        stored = http.get(f"/api/runs/{run.id}").json()
        linked = http.get(f"/api/sweeps/{sweep['id']}").json()["trials"][0]
    assert stored["config"] == {
        "lr": trial["params"]["lr"],
        "epochs": 2,
        "sweep": {"id": sweep["id"], "trial": trial["number"]},
    }
    assert (linked["run"], linked["status"]) == (run.id, "running")
