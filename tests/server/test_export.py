"""Export endpoints: CSV and JSON round trips of points, NaN and infinities included."""

from __future__ import annotations

import csv
import io
import json
import math

from panda.protocol import decode_value
from tests.server.conftest import Api

VALUES = ["NaN", "Infinity", "-Infinity", 1.25, 0.1, -3e-300]


def _logged_run(api: Api) -> int:
    run = api.run(name="export me")
    points = [
        {"key": "loss", "step": step, "value": value, "time": 10.0 + step}
        for step, value in enumerate(VALUES)
    ]
    points.append({"key": "acc", "step": 0, "value": 0.5, "time": 10.0})
    api.ok("POST", f"/runs/{run['id']}/metrics", json={"points": points})
    return int(run["id"])


def _same(read: list[float], sent: list[float | str]) -> bool:
    expected = [decode_value(value) for value in sent]
    return all(
        (math.isnan(a) and math.isnan(b)) or a == b
        for a, b in zip(read, expected, strict=True)
    )


def test_export_csv_round_trips_non_finite_values(api: Api) -> None:
    run_id = _logged_run(api)

    response = api.client.get(f"/api/runs/{run_id}/export.csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    loss = [row for row in rows if row["key"] == "loss"]
    assert [int(row["step"]) for row in loss] == list(range(len(VALUES)))
    assert _same([float(row["value"]) for row in loss], VALUES)
    assert {row["branch"] for row in rows} == {
        str(api.ok("GET", f"/runs/{run_id}")["branch"])
    }
    assert float(loss[2]["time"]) == 12.0


def test_export_json_round_trips_run_points_and_nudges(api: Api) -> None:
    run_id = _logged_run(api)
    nudge = api.nudge(run_id, value=0.02)

    document = json.loads(api.client.get(f"/api/runs/{run_id}/export.json").text)

    assert document["run"]["name"] == "export me"
    assert set(document["metrics"]) == {"acc", "loss"}
    assert document["metrics"]["loss"]["values"] == VALUES
    assert document["nudges"][0]["id"] == nudge["id"]


def test_export_csv_nudges_lists_history(api: Api) -> None:
    run_id = _logged_run(api)
    api.nudge(run_id, value=0.02)

    response = api.client.get(
        f"/api/runs/{run_id}/export.csv", params={"what": "nudges"}
    )

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(row["param"], float(row["value"]), row["status"]) for row in rows] == [
        ("lr", 0.02, "pending")
    ]


def test_export_unknown_run_or_part_returns_4xx(api: Api) -> None:
    run_id = _logged_run(api)

    assert api.client.get("/api/runs/99/export.json").status_code == 404
    response = api.client.get(f"/api/runs/{run_id}/export.csv", params={"what": "x"})
    assert response.status_code == 422
    assert "query.what" in response.json()["detail"]
