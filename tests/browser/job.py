"""A scripted stand-in for a training job, speaking the real REST API.

It does what the client and the babysitter hook do over HTTP: create a run,
log points, poll for pending nudges with a heartbeat, record a checkpoint and
acknowledge each nudge; tests use it to drive the dashboard.
"""

from __future__ import annotations

from typing import Any

import httpx


class ScriptedJob:
    """One run on the server, driven step by step by a test."""

    def __init__(self, api: httpx.Client, name: str = "resnet-cifar", **config: Any):
        self.api = api
        created = self._ok(api.post("/api/runs", json={"name": name, "config": config}))
        self.run_id: int = created["id"]
        self.branch: int | None = created.get("branch")
        self.path = f"/api/runs/{self.run_id}"

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        assert response.is_success, (
            f"{response.request.url}: {response.status_code} {response.text}"
        )
        return response.json()

    def log(
        self,
        key: str,
        steps: range | list[int],
        values: list[Any],
        times: list[float] | None = None,
    ) -> None:
        """Post one metric's points; values may be the strings "NaN", "Infinity".

        ``times`` (seconds since the epoch, one per point) stand for the
        job's clock; without them the server stamps its own time.
        """
        points: list[dict[str, Any]] = [
            {"key": key, "step": step, "value": value}
            for step, value in zip(steps, values, strict=True)
        ]
        if times is not None:
            for point, point_time in zip(points, times, strict=True):
                point["time"] = point_time
        body: dict[str, Any] = {"points": points}
        if self.branch is not None:
            body["branch"] = self.branch
        self._ok(self.api.post(f"{self.path}/metrics", json=body))

    def pending_nudges(self) -> list[dict[str, Any]]:
        reply = self._ok(self.api.post(f"{self.path}/heartbeat", json={}))
        return list(reply["pending"])

    def checkpoint(self, step: int, reason: str = "nudge") -> int:
        body = {
            "step": step,
            "path": f"/tmp/panda-test/run{self.run_id}/step{step}.pt",
            "size_bytes": 123_456,
            "sha256": "0" * 64,
            "reason": reason,
        }
        return int(self._ok(self.api.post(f"{self.path}/checkpoints", json=body))["id"])

    def apply(
        self,
        nudge: dict[str, Any],
        step: int,
        old_value: float | None = None,
        checkpoint: int | None = None,
    ) -> dict[str, Any]:
        """Acknowledge ``nudge`` as applied from ``step`` on.

        A set nudge gets a new checkpoint first; an undo names the checkpoint
        it went back to, and the job logs to the branch the server answers.
        """
        if checkpoint is None:
            checkpoint = self.checkpoint(step)
        body = {"status": "applied", "step": step, "checkpoint": checkpoint}
        if old_value is not None:
            body["old_value"] = old_value
        acked = self._ok(
            self.api.post(f"{self.path}/nudges/{nudge['id']}/ack", json=body)
        )
        if acked.get("branch") is not None and nudge["action"] == "undo":
            self.branch = acked["branch"]
        return acked

    def reject(self, nudge: dict[str, Any], reason: str) -> dict[str, Any]:
        body = {"status": "rejected", "reason": reason}
        return self._ok(
            self.api.post(f"{self.path}/nudges/{nudge['id']}/ack", json=body)
        )

    def finish(self, status: str = "finished") -> None:
        self._ok(self.api.patch(self.path, json={"status": status}))
