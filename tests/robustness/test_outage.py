"""The server dies mid-run: training keeps its pace and every point arrives once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.robustness.conftest import Served, read_step_times, start_job, wait_for

STEPS = 400
PACE = 50.0  # steps per second: the run takes 8 s
DOWN_S = 3.0
RATE_TOLERANCE = 0.9


def _rate(times: list[tuple[int, float]], start: float, end: float) -> float:
    """Steps per second the job completed between two wall-clock moments."""
    return sum(1 for _, moment in times if start <= moment < end) / (end - start)


def test_server_killed_mid_run_loses_no_point_and_slows_nothing(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    server = serve().start()
    job, times_path = start_job(tmp_path, server.url, steps=STEPS, pace=PACE)
    with server.api() as api:
        wait_for(
            lambda: times_path.exists() and len(read_step_times(times_path)) > 50,
            timeout_s=60,
            what="the job to train 50 steps",
        )
        [run] = api.get("/runs").json()

    # -- outage: SIGKILL, a few seconds down, then the same port and database
    killed_at = time.time()
    server.kill()
    time.sleep(DOWN_S)
    server.start()
    back_at = time.time()

    with server.api() as api:
        nudge = api.post(
            f"/runs/{run['id']}/nudges", json={"param": "lr", "value": 0.01}
        )
        assert nudge.status_code == 201, nudge.text
        assert job.wait(60) == 0, (tmp_path / "job.log").read_text()

        loss = api.get(f"/runs/{run['id']}/metrics", params={"key": "loss"}).json()
        lr = api.get(f"/runs/{run['id']}/metrics", params={"key": "lr"}).json()
        applied = api.get(f"/runs/{run['id']}/nudges/{nudge.json()['id']}").json()
        ended = api.get(f"/runs/{run['id']}").json()

    times = read_step_times(times_path)
    assert [step for step, _ in times] == list(range(STEPS))
    # Every point the job logged is stored, and exactly once.
    assert loss["steps"] == list(range(STEPS))
    assert loss["total"] == STEPS
    assert lr["steps"] == list(range(STEPS))
    assert ended["status"] == "finished"

    # The nudge sent right after the restart reached the job and was applied.
    left = sum(1 for _, moment in times if moment > back_at)
    assert applied["status"] == "applied", (applied, left, (tmp_path / "job.log").read_text()[-3000:])
    step_at = applied["applied_step"]
    assert step_at < STEPS
    assert lr["values"][step_at] == 0.01

    first_at = times[0][1]
    before = _rate(times, first_at + 0.5, killed_at)
    during = _rate(times, killed_at, back_at)
    assert during >= RATE_TOLERANCE * before, (before, during)
    assert "Traceback" not in server.log()
