"""The server dies mid-run: training keeps its pace and every point arrives once."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.robustness.conftest import Jobs, Served, read_step_times, wait_for

MAX_STEPS = 5000
PACE = 50.0  # steps per second
DOWN_S = 3.0
RATE_TOLERANCE = 0.9


def _rate(times: list[tuple[int, float]], start: float, end: float) -> float:
    """Steps per second the job completed between two wall-clock moments."""
    return sum(1 for _, moment in times if start <= moment < end) / (end - start)


def test_server_killed_mid_run_loses_no_point_and_slows_nothing(
    serve: Callable[..., Served], jobs: Jobs
) -> None:
    server = serve().start()
    job, times_path = jobs.start(server.url, steps=MAX_STEPS, pace=PACE)
    with server.api() as api:
        wait_for(
            lambda: times_path.exists() and len(read_step_times(times_path)) >= 50,
            timeout_s=60,
            what="the job to train 50 steps",
        )
        [run] = api.get("/runs").json()

    # The outage: SIGKILL, a few seconds down, then the same port and database.
    killed_at = time.time()
    server.kill()
    time.sleep(DOWN_S)
    server.start()
    back_at = time.time()

    with server.api() as api:
        path = f"/runs/{run['id']}"
        nudge = api.post(f"{path}/nudges", json={"param": "lr", "value": 0.01})
        assert nudge.status_code == 201, nudge.text
        applied = wait_for(
            lambda: (
                api.get(f"{path}/nudges/{nudge.json()['id']}").json()
                if api.get(f"{path}/nudges/{nudge.json()['id']}").json()["status"]
                == "applied"
                else None
            ),
            timeout_s=20,
            what="the nudge sent after the restart to be applied",
        )
        time.sleep(0.5)  # a few steps with the new lr
        jobs.stop_file("job").touch()
        assert job.wait(60) == 0, jobs.log_path("job").read_text()

        loss = api.get(f"{path}/metrics", params={"key": "loss", "all": "true"}).json()
        lr = api.get(f"{path}/metrics", params={"key": "lr", "all": "true"}).json()
        ended = api.get(path).json()

    # Every point the job logged is stored, and exactly once.
    times = read_step_times(times_path)
    logged = [step for step, _ in times]
    assert logged == list(range(len(logged)))
    assert loss["steps"] == logged
    assert loss["total"] == len(logged)
    assert lr["steps"] == logged
    assert ended["status"] == "finished"

    # The nudge took effect at a step boundary after the restart.
    step_at = applied["applied_step"]
    assert lr["values"][step_at - 1] == 0.05
    assert lr["values"][step_at:] == [0.01] * (len(logged) - step_at)

    # Training did not slow down while the server was away.
    before = _rate(times, times[0][1] + 0.5, killed_at)
    during = _rate(times, killed_at, back_at)
    assert during >= RATE_TOLERANCE * before, (before, during)
    assert "Traceback" not in server.log()
