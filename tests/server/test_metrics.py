"""Routes for metric points: ingest, keys, reading a line."""

from __future__ import annotations

import pytest

from tests.server.conftest import Api


def test_post_metrics_non_finite_values_round_trip(api: Api) -> None:
    run = api.run()
    values = ["NaN", "Infinity", "-Infinity", 1.25]
    points = [{"key": "loss", "step": i, "value": v} for i, v in enumerate(values)]
    api.ok("POST", f"/runs/{run['id']}/metrics", json={"points": points})

    series = api.ok("GET", f"/runs/{run['id']}/metrics", params={"key": "loss"})

    assert series["values"] == values
    assert series["steps"] == [0, 1, 2, 3]
    assert series["total"] == 4


def test_post_metrics_resent_batch_is_idempotent(api: Api) -> None:
    run = api.run()
    assert api.log(run["id"], "loss", range(5)) == {"received": 5, "stored": 5}
    assert api.log(run["id"], "loss", range(5)) == {"received": 5, "stored": 0}
    assert api.line(run["id"]) == [0, 1, 2, 3, 4]


def test_post_metrics_out_of_order_batches_read_sorted(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", [7, 8, 9])
    api.log(run["id"], "loss", [2, 1, 3])

    assert api.line(run["id"]) == [1, 2, 3, 7, 8, 9]
    assert api.ok("GET", f"/runs/{run['id']}")["last_step"] == 9


def test_post_metrics_largest_step_accepted_and_beyond_rejected(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", [2**63 - 1])
    assert api.line(run["id"]) == [2**63 - 1]

    points = [{"key": "loss", "step": 2**63, "value": 1.0}]
    detail = api.ok("POST", f"/runs/{run['id']}/metrics", 422, json={"points": points})
    assert "body.points.0.step" in detail["detail"]


@pytest.mark.parametrize(
    "key", ["train/loss", "val loss", "точность/λ ✓", "k" * 200, "a/b/../c"]
)
def test_post_metrics_unusual_keys_round_trip(api: Api, key: str) -> None:
    run = api.run()
    api.log(run["id"], key, [0, 1])

    assert api.ok("GET", f"/runs/{run['id']}/metrics") == [key]
    assert api.line(run["id"], key) == [0, 1]


@pytest.mark.parametrize(
    ("key", "rule"),
    [("k" * 201, "at most 200 characters"), ("", "at least 1 character"), (" ", "")],
)
def test_post_metrics_bad_key_returns_422(api: Api, key: str, rule: str) -> None:
    run = api.run()
    points = [{"key": key, "step": 0, "value": 1.0}]
    detail = api.ok("POST", f"/runs/{run['id']}/metrics", 422, json={"points": points})

    assert "body.points.0.key" in detail["detail"]
    assert rule in detail["detail"]


@pytest.mark.parametrize(
    "point",
    [
        {"key": "loss", "step": -1, "value": 1.0},
        {"key": "loss", "step": 1.5, "value": 1.0},
        {"key": "loss", "step": 0, "value": "nan?"},
        {"key": "loss", "step": 0},
    ],
)
def test_post_metrics_bad_point_returns_422(api: Api, point: dict[str, object]) -> None:
    run = api.run()
    detail = api.ok("POST", f"/runs/{run['id']}/metrics", 422, json={"points": [point]})
    assert detail["detail"].startswith("body.points.0.")


def test_post_metrics_unknown_run_returns_404(api: Api) -> None:
    response = api.client.post("/api/runs/7/metrics", json={"points": []})
    assert response.status_code == 404
    assert response.json() == {"detail": "run 7 not found"}


def test_post_metrics_foreign_branch_returns_404(api: Api) -> None:
    first = api.run()
    second = api.run()
    body = {"points": [], "branch": second["branch"]}
    detail = api.ok("POST", f"/runs/{first['id']}/metrics", 404, json=body)
    assert f"branch {second['branch']}" in detail["detail"]


def test_get_metrics_max_points_downsamples(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(1000))

    series = api.ok(
        "GET", f"/runs/{run['id']}/metrics", params={"key": "loss", "max_points": 50}
    )

    assert series["downsampled"] is True
    assert series["total"] == 1000
    assert len(series["steps"]) <= 50
    assert 999 in series["steps"]
    assert 0 in series["steps"]


def test_get_metrics_max_points_too_small_returns_422(api: Api) -> None:
    run = api.run()
    detail = api.ok(
        "GET", f"/runs/{run['id']}/metrics", 422, params={"key": "l", "max_points": 1}
    )
    assert "query.max_points" in detail["detail"]


def test_get_metrics_default_view_is_bounded_and_all_reads_every_point(
    api: Api,
) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(5000))
    path = f"/runs/{run['id']}/metrics"

    view = api.ok("GET", path, params={"key": "loss"})
    every = api.ok("GET", path, params={"key": "loss", "all": "true"})

    assert view["downsampled"] is True
    assert len(view["steps"]) <= 2000
    assert {0, 4999} <= set(view["steps"])
    assert every["steps"] == list(range(5000))
    assert every["total"] == 5000


def test_get_metrics_zoomed_range_returns_raw_points(api: Api) -> None:
    run = api.run()
    api.log(run["id"], "loss", range(5000))

    zoomed = api.ok(
        "GET",
        f"/runs/{run['id']}/metrics",
        params={"key": "loss", "max_points": 100, "min_step": 1000, "max_step": 1099},
    )

    assert zoomed["steps"] == list(range(1000, 1100))
    assert zoomed["downsampled"] is False


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"min_step": 10, "max_step": 9}, "query.min_step"),
        ({"all": "true", "max_points": 10}, "query.all"),
        ({"max_points": 20_001}, "query.max_points"),
    ],
)
def test_get_metrics_bad_view_returns_422(
    api: Api, params: dict[str, object], where: str
) -> None:
    run = api.run()
    path = f"/runs/{run['id']}/metrics"
    detail = api.ok("GET", path, 422, params={"key": "loss", **params})
    assert where in detail["detail"]


def test_post_metrics_columns_store_like_points(api: Api) -> None:
    run = api.run()
    columns = {
        "loss": {"steps": [0, 1, 2], "values": [1.5, "NaN", "-Infinity"]},
        "acc": {"steps": [2], "values": [0.5], "times": [1_700_000_000.0]},
    }
    reply = api.ok("POST", f"/runs/{run['id']}/metrics", json={"columns": columns})

    assert reply == {"received": 4, "stored": 4}
    loss = api.ok("GET", f"/runs/{run['id']}/metrics", params={"key": "loss"})
    assert loss["values"] == [1.5, "NaN", "-Infinity"]
    acc = api.ok("GET", f"/runs/{run['id']}/metrics", params={"key": "acc"})
    assert acc["times"] == [1_700_000_000.0]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"steps": [0, 1], "values": [1.0]}, "same length"),
        ({"steps": [-1], "values": [1.0]}, "greater than or equal to 0"),
        ({"steps": [0], "values": ["many"]}, "body.columns.loss.values.0"),
        ({"steps": [0], "values": [True]}, "valid number, got True"),
        ({"steps": [0], "values": ["1.5"]}, "valid number, got '1.5'"),
        ({"steps": ["4"], "values": [1.0]}, "valid integer, got '4'"),
        # As a float it would be stored as 2**53, a step the caller never sent.
        ({"steps": [2**53 + 1.0], "values": [1.0]}, "valid integer"),
    ],
)
def test_post_metrics_bad_columns_rejected_with_reason(
    api: Api, column: dict[str, object], message: str
) -> None:
    run = api.run()
    reply = api.ok(
        "POST", f"/runs/{run['id']}/metrics", 422, json={"columns": {"loss": column}}
    )
    assert message in reply["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"columns": {"loss": {"steps": [0], "values": [1.0]}', "JSON"),
        (b'{"columns": {"loss": {"steps": [0], "values": [1.0]}}} trailing', "JSON"),
        (b'{"columns": {"loss": \xff}}', "JSON"),
        (b"", "body"),
        (
            b'{"columns": {"x": {"steps": [1' + b"9" * 20 + b'], "values": [1]}}}',
            "step",
        ),
    ],
)
def test_post_metrics_malformed_body_returns_422_and_keeps_data(
    api: Api, body: bytes, message: str
) -> None:
    run = api.run()
    api.log(run["id"], "loss", [0, 1])
    reply = api.ok(
        "POST",
        f"/runs/{run['id']}/metrics",
        422,
        content=body,
        headers={"content-type": "application/json"},
    )
    assert message in str(reply["detail"])
    assert api.line(run["id"]) == [0, 1]


def test_post_metrics_json_nan_literal_reads_as_nan(api: Api) -> None:
    run = api.run()
    body = b'{"columns": {"loss": {"steps": [0, 1], "values": [NaN, 2.5]}}}'
    api.ok(
        "POST",
        f"/runs/{run['id']}/metrics",
        content=body,
        headers={"content-type": "application/json"},
    )
    series = api.ok("GET", f"/runs/{run['id']}/metrics", params={"key": "loss"})
    assert series["values"] == ["NaN", 2.5]
