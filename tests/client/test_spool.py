"""The spool: order kept, bounded, and never silent about what it drops."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from panda.client._sender import Sender, _Batch
from panda.client._spool import Spool
from tests.client.conftest import LiveServer


def points_record(step: int) -> dict[str, object]:
    batch = _Batch()
    batch.add(step, 0.0, {"loss": 1.0})
    return batch.record()


def test_spool_replays_records_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.jsonl", max_bytes=10_000)
    for index in range(3):
        spool.append(points_record(index), droppable=True)
    spool.append({"op": "finish", "status": "finished"}, droppable=False)
    records = list(spool.records())
    assert [record["op"] for _, record in records] == ["points"] * 3 + ["finish"]

    spool.mark_replayed(records[1][0])
    assert [
        record["columns"]["loss"]["steps"][0] for _, record in list(spool.records())[:1]
    ] == [2]
    spool.mark_replayed(records[-1][0])
    assert not spool.pending
    assert not spool.path.exists()


def test_spool_when_full_drops_new_points_but_keeps_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    point = points_record(0)
    record_bytes = len(json.dumps(point, separators=(",", ":"))) + 1
    spool = Spool(tmp_path / "s.jsonl", max_bytes=4 * record_bytes + 20)
    with caplog.at_level(logging.WARNING, logger="panda"):
        accepted = [spool.append(point, droppable=True) for _ in range(10)]
        assert spool.append({"op": "ack", "nudge": 1, "body": {}}, droppable=False)
    assert accepted.count(False) == spool.dropped_points > 0
    full = [
        record for record in caplog.records if "is full (limit" in record.getMessage()
    ]
    assert len(full) == 1
    assert str(spool.path) in full[0].getMessage()
    assert list(spool.records())[-1][1]["op"] == "ack"
    assert accepted[:4] == [True] * 4


def test_spool_with_zero_limit_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="spool_max_bytes"):
        Spool(tmp_path / "s.jsonl", max_bytes=0)


def test_replay_drops_a_record_it_cannot_send_and_sends_the_rest(
    tmp_path: Path, running_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with running_server.api() as api:
        run_id = api.post("/api/runs", json={"name": "spooled"}).json()["id"]
    spool = Spool(tmp_path / "s.jsonl", max_bytes=100_000)
    unsendable = points_record(0)
    # A lone surrogate survives the spool's JSON but has no UTF-8 form to send.
    unsendable["columns"] = {"bad\ud800": unsendable["columns"]["loss"]}  # type: ignore[index]
    spool.append(unsendable, droppable=True)
    spool.append(points_record(1), droppable=True)
    with httpx.Client(base_url=running_server.url, timeout=10) as client:
        sender = Sender(
            client=client, spool=spool, run_id=run_id, branch=None, flush_interval_s=1
        )
        with caplog.at_level(logging.ERROR, logger="panda"):
            sender._replay()
        sender._poster.stop()

    with running_server.api() as api:
        stored = api.get(f"/api/runs/{run_id}/metrics", params={"key": "loss"}).json()
    assert stored["steps"] == [1]
    assert not spool.pending
    assert any("cannot send" in record.getMessage() for record in caplog.records)
