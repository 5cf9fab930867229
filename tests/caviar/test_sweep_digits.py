"""A real sweep of the digits demo from the command line, then a fork of its best.

Eight one-epoch trials run two at a time against a real server; each is a
``panda demo`` process that reads its params from the environment. The runner
is started with its environment's bin directory off ``PATH``, as from a shell
where the environment is not activated: the trials find ``panda`` all the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

SWEEP_TIMEOUT_S = 240


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the store is tested on PostgreSQL elsewhere, and this is slow."""
    return f"sqlite:///{tmp_path / 'panda.db'}"


def _panda(*args: str, home: Path, timeout_s: float = 60) -> str:
    bin_dir = str(Path(sys.executable).parent)
    path = [part for part in os.environ["PATH"].split(os.pathsep) if part != bin_dir]
    environment = {
        **os.environ,
        "PANDA_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "PATH": os.pathsep.join(path),
    }
    for name in ("PANDA_SWEEP", "PANDA_TRIAL", "PANDA_PARAMS", "PANDA_RESUME"):
        environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "panda", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def _write_sweep(path: Path) -> None:
    command = ["panda", "demo", "--epochs", "1", "--pace", "0"]
    path.write_text(
        "[sweep]\n"
        'name = "digits-e2e"\n'
        f"command = {json.dumps(command)}\n"
        'strategy = "random"\n'
        "trials = 8\n"
        "parallel = 2\n"
        'objective = "val/loss"\n'
        "[space]\n"
        "lr = { log_uniform = [0.003, 0.3] }\n"
        "momentum = { one_minus_log_uniform = [0.5, 0.95] }\n"
        "batch_size = 128\n",
        encoding="utf-8",
    )


def test_sweep_of_digits_demo_ranks_trials_and_best_forks(
    live_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "digits.toml"
    _write_sweep(config)

    output = _panda(
        "sweep",
        str(config),
        "--server",
        live_server,
        home=tmp_path,
        timeout_s=SWEEP_TIMEOUT_S,
    )

    with httpx.Client(base_url=live_server, timeout=10) as http:
        sweeps = http.get("/api/sweeps").json()
        assert [s["name"] for s in sweeps] == ["digits-e2e"]
        sweep: dict[str, Any] = http.get(f"/api/sweeps/{sweeps[0]['id']}").json()
        trials = sweep["trials"]
        assert sweep["status"] == "finished"
        assert len(trials) == 8
        assert {t["status"] for t in trials} == {"finished"}
        assert [t["rank"] for t in trials] == list(range(1, 9))
        objectives = [t["objective"] for t in trials]
        assert objectives == sorted(objectives)
        assert "RANK" in output

        best = trials[0]
        run = http.get(f"/api/runs/{best['run']}").json()
        assert run["config"]["sweep"] == {"id": sweep["id"], "trial": best["number"]}
        assert run["name"] == f"digits-cnn · sweep {sweep['id']} trial {best['number']}"
        assert run["config"]["lr"] == best["params"]["lr"]
        assert run["config"]["batch_size"] == 128
        assert run["last_values"]["val/loss"] == best["objective"]

        forked = _panda(
            "fork",
            str(best["run"]),
            "--set",
            "lr=0.01",
            "--server",
            live_server,
            home=tmp_path,
        )
        fork_id = int(forked.split()[1])
        fork = http.get(f"/api/runs/{fork_id}").json()
        nudges = http.get(f"/api/runs/{fork_id}/nudges").json()
        relaunch = _panda(
            "resume", str(fork_id), "--dry-run", "--server", live_server, home=tmp_path
        )

    assert fork["status"] == "ready"
    assert fork["heartbeat_at"] is None
    assert f"PANDA_RESUME={fork_id} " in relaunch
    assert relaunch.rstrip().endswith("panda demo --epochs 1 --pace 0")

    assert fork["parent_run"] == best["run"]
    assert fork["config"]["lr"] == 0.01
    assert [(n["param"], n["value"], n["status"]) for n in nudges] == [
        ("lr", 0.01, "pending")
    ]


def test_sweep_whose_every_trial_fails_exits_non_zero_naming_the_logs(
    live_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "broken.toml"
    command = [sys.executable, "-c", "raise SystemExit('no data here')"]
    config.write_text(
        "[sweep]\n"
        f"command = {json.dumps(command)}\n"
        'strategy = "random"\n'
        "trials = 2\n"
        "parallel = 2\n"
        'objective = "val/loss"\n'
        "[space]\n"
        "lr = { log_uniform = [0.003, 0.3] }\n",
        encoding="utf-8",
    )
    environment = {**os.environ, "PANDA_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "panda", "sweep", str(config), "--server", live_server],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    logs = tmp_path / "sweeps" / "sweep-1"
    assert f"Error: every trial of sweep 1 failed; their output is in {logs}" in (
        result.stderr
    )
    assert "no data here" in (logs / "trial-1.log").read_text(encoding="utf-8")
