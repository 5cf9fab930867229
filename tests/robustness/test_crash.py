"""A training process killed with SIGKILL: marked crashed, then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

from tests.robustness.conftest import Jobs, Served, wait_for

CHECKPOINT_EVERY = 20


def test_killed_job_is_marked_crashed_then_resumes_on_new_branch(
    serve: Callable[..., Served], jobs: Jobs
) -> None:
    server = serve(PANDA_HEARTBEAT_TIMEOUT_S="3").start()
    job, _ = jobs.start(
        server.url, steps=100_000, pace=50, checkpoint_every=CHECKPOINT_EVERY
    )

    with server.api() as api:
        [run] = wait_for(
            lambda: [r for r in api.get("/runs").json() if (r["last_step"] or 0) >= 45],
            timeout_s=60,
            what="the job to pass step 45",
        )
        path = f"/runs/{run['id']}"
        wait_for(
            lambda: len(api.get(f"{path}/checkpoints").json()) >= 2,
            timeout_s=10,
            what="two periodic checkpoints",
        )
        job.send_signal(signal.SIGKILL)
        job.wait(10)
        assert api.get(path).json()["status"] == "running"

        crashed = wait_for(
            lambda: api.get(path).json()["status"] == "crashed",
            timeout_s=15,
            what="the run to be marked crashed",
        )
        assert crashed
        latest = max(c["step"] for c in api.get(f"{path}/checkpoints").json())

        environment = {**os.environ, "PANDA_HOME": str(jobs.home("job"))}
        with jobs.log_path("resume").open("wb") as log:
            resumed = subprocess.Popen(
                [sys.executable, "-m", "panda", "resume", str(run["id"]),
                 "--server", server.url],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        jobs.started.append(resumed)
        wait_for(
            lambda: (
                (reply := api.get(path).json())["branch"] != run["branch"]
                and (reply["last_step"] or 0) > latest + 5
            ),
            timeout_s=60,
            what="the resumed job to train on",
        )
        # A loaded machine may leave a gap of a few seconds between two
        # heartbeats; the next one revives the run, so wait for that.
        again = wait_for(
            lambda: (reply := api.get(path).json())["status"] == "running" and reply,
            timeout_s=15,
            what="the resumed run to be running",
        )
        branches = api.get(f"{path}/branches").json()
        jobs.stop_file("job").touch()
        assert resumed.wait(60) == 0, jobs.log_path("resume").read_text()

        loss = api.get(f"{path}/metrics", params={"key": "loss", "all": "true"}).json()
        ended = api.get(path).json()
        final_branches = api.get(f"{path}/branches").json()

    assert again["status"] == "running"
    assert [branch["reason"] for branch in branches] == ["start", "resume"]
    assert branches[1]["start_step"] == latest
    assert again["branch"] == branches[1]["id"] != run["branch"]
    assert ended["last_step"] is not None, (ended, final_branches)
    assert loss["steps"] == list(range(ended["last_step"] + 1))
    assert ended["status"] == "finished"
