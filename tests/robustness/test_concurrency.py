"""Eight runs logging flat out and four live streams on one real server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import panda
from tests.robustness.conftest import Served, wait_for

RUNS = 8
STREAMS = 4
LOG_FOR_S = 4.0
# Flat out, eight Python threads log ~10x faster than a 2-core machine ingests
# (about 10k points/s measured while the writers compete for the cores); the
# cap keeps the drain after the writers stop within a few seconds.
STEPS_MAX = 5000
KEYS = ("loss", "acc")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _log_flat_out(run: panda.Run, until: float, logged: list[int]) -> None:
    step = 0
    while time.monotonic() < until and step < STEPS_MAX:
        run.log({"loss": 1.0 / (step + 1), "acc": step % 7}, step=step)
        step += 1
    logged.append(step)


def _read_stream(
    url: str, stop: threading.Event, seen: dict[str, list[int]], errors: list[str]
) -> None:
    # Longer than the server's keep-alive comment interval: silence is an error.
    timeout = httpx.Timeout(10.0, read=20.0)
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            assert response.status_code == 200
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "points":
                    points = json.loads(line.removeprefix("data: "))
                    seen.setdefault(points["key"], []).extend(points["steps"])
                if stop.is_set():
                    return
        errors.append(f"{url}: the stream ended while runs were logging")
    except Exception as error:
        errors.append(f"{url}: {error!r}")


def test_eight_runs_and_four_streams_store_every_point(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    server = serve().start()
    records = _Records()
    logging.getLogger("panda").addHandler(records)
    try:
        runs = [
            panda.init(f"busy-{index}", server=server.url, spool_dir=tmp_path / "spool")
            for index in range(RUNS)
        ]
        stop, errors = threading.Event(), []
        seen: list[dict[str, list[int]]] = [{} for _ in range(STREAMS)]
        readers = [
            threading.Thread(
                target=_read_stream,
                args=(f"{server.url}/api/runs/{run.id}/stream", stop, seen[i], errors),
            )
            for i, run in enumerate(runs[:STREAMS])
        ]
        for reader in readers:
            reader.start()
        time.sleep(0.3)  # let the streams subscribe before the first point

        until = time.monotonic() + LOG_FOR_S
        logged: list[list[int]] = [[] for _ in runs]
        writers = [
            threading.Thread(target=_log_flat_out, args=(run, until, logged[i]))
            for i, run in enumerate(runs)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        for run in runs:
            assert run.flush(timeout_s=120), f"run {run.id} did not drain"
        wait_for(
            lambda: all(
                len(seen[index].get(key, ())) >= count
                for index, [count] in enumerate(logged[:STREAMS])
                for key in KEYS
            ),
            timeout_s=10,
            what="the streams to deliver every point",
        )
        stop.set()
        for run in runs:
            run.finish()  # its run event wakes the stream's reader, which stops
        for reader in readers:
            reader.join(10)
    finally:
        logging.getLogger("panda").removeHandler(records)

    with server.api() as api:
        for run, [count] in zip(runs, logged, strict=True):
            for key in KEYS:
                params = {"key": key, "all": "true"}
                series = api.get(f"/runs/{run.id}/metrics", params=params).json()
                assert series["total"] == count, (run.id, key)
                assert series["steps"] == list(range(count)), (run.id, key)
    for index, [count] in enumerate(logged[:STREAMS]):
        for key in KEYS:
            assert sorted(seen[index].get(key, [])) == list(range(count)), key

    assert not errors
    assert not records.messages
    log = server.log()
    assert "database is locked" not in log
    assert "Traceback" not in log
    assert " ERROR " not in log
    total = sum(count for [count] in logged) * len(KEYS)
    assert total > RUNS * 1000, "the runs barely logged anything"
