"""The server's own OpenAPI schema, fuzzed: no request gets a 5xx.

Schemathesis generates requests that fit the schema and requests that break
it, for every operation but the event streams, against a real uvicorn server
on SQLite and on PostgreSQL. A 2xx reply must also match its response schema.
JSON generators never produce NaN, huge integers in unions or NUL bytes, so a
few such bodies are sent by hand below.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES_PER_OPERATION = 15
MAX_REPORTED = 20
SHA = "0" * 64
JSON = {"content-type": "application/json"}


def _seed_run(api: httpx.Client) -> int:
    """Give fuzzed ids something to hit: a run with points, a checkpoint, a nudge."""
    run = api.post("/runs", json={"name": "fuzz", "config": {"lr": 0.1}}).json()
    points = [{"key": "loss", "step": s, "value": 1.0 / (s + 1)} for s in range(5)]
    api.post(f"/runs/{run['id']}/metrics", json={"points": points})
    checkpoint = {"step": 2, "path": "/ckpt/2.pt", "size_bytes": 1, "sha256": SHA}
    api.post(f"/runs/{run['id']}/checkpoints", json=checkpoint)
    api.post(f"/runs/{run['id']}/nudges", json={"param": "lr", "value": 0.01})
    return int(run["id"])


def test_fuzzed_requests_never_answer_5xx(live_server: str) -> None:
    with httpx.Client(base_url=f"{live_server}/api", timeout=10) as api:
        _seed_run(api)
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/stream"):
            continue  # never ends by design; see tests/server/test_stream.py
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, live_server, failures)
    assert not failures, "\n".join(failures)


def _fuzz_operation(
    operation: Any, mode: GenerationMode, url: str, failures: list[str]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        if case.operation.path.endswith("/heartbeat"):
            case.query = {**(case.query or {}), "wait_s": 0}  # no 30 s long polls
        response = case.call(base_url=url, timeout=10)
        problem = None
        if response.status_code >= 500:
            problem = f"answered {response.status_code}: {response.text[:200]}"
        elif response.status_code < 300:
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as error:  # schemathesis raises a failure group
                problem = f"reply does not match its schema: {str(error)[:300]}"
        if problem is not None and len(failures) < MAX_REPORTED:
            failures.append(
                f"{case.method} {case.formatted_path} {problem}\n"
                f"  {case.as_curl_command()}"
            )

    try:
        check()
    except Unsatisfiable:
        # Every parameter of the operation accepts anything of its type, so
        # there is no request that breaks the schema to generate.
        assert mode is GenerationMode.NEGATIVE, operation.label


# (method, path, raw JSON body, the statuses a correct server may answer)
HAND_PICKED = [
    (
        "POST",
        "/runs/{run}/nudges",
        b'{"param": "lr", "value": 0.1, "group": 1180591620717411303424}',
        (422,),
    ),
    (
        "POST",
        "/runs/{run}/nudges",
        b'{"param": "lr", "value": 0.1, "group": -1}',
        (422,),
    ),
    (
        "POST",
        "/runs/{run}/nudges",
        b'{"param": "lr", "value": 0.1, "group": ""}',
        (422,),
    ),
    (
        "POST",
        "/runs/{run}/nudges/1/ack",
        b'{"status": "applied", "step": 3, "old_value": NaN}',
        (422,),
    ),
    (
        "POST",
        "/runs/{run}/nudges/1/ack",
        b'{"status": "applied", "step": 3, "factor": Infinity}',
        (422,),
    ),
    ("POST", "/runs", b'{"config": {"lr": NaN}}', (201, 422)),
    ("POST", "/runs", b'{"config": {"lr": -Infinity}}', (201, 422)),
    # SQLite keeps NUL characters; PostgreSQL text cannot hold them.
    ("POST", "/runs", b'{"name": "a\\u0000b"}', (201, 422)),
    ("POST", "/runs", b'{"command": ["python", "\\u0000"], "cwd": "/"}', (201, 422)),
    (
        "POST",
        "/runs/{run}/nudges",
        b'{"param": "lr", "value": 0.1, "note": "\\u0000"}',
        (201, 422),
    ),
    (
        "POST",
        "/runs/{run}/checkpoints",
        b'{"step": 1, "path": "/c/\\u0000.pt", '
        b'"size_bytes": 1, "sha256": "' + SHA.encode() + b'"}',
        (201, 422),
    ),
    ("POST", "/runs/{run}/fork", b'{"checkpoint": 1, "name": "\\u0000"}', (201, 422)),
]


def test_hand_picked_bodies_get_4xx_and_leave_reads_working(live_server: str) -> None:
    wrong = []
    with httpx.Client(base_url=f"{live_server}/api", timeout=10) as api:
        run = _seed_run(api)
        for method, path, body, allowed in HAND_PICKED:
            url = path.format(run=run)
            reply = api.request(method, url, content=body, headers=JSON)
            if reply.status_code not in allowed:
                wrong.append(f"{method} {url} {body!r} -> {reply.status_code}")

        # Nothing stored above may break the replies that list it.
        for read in ("/runs", f"/runs/{run}/nudges", f"/runs/{run}/checkpoints"):
            if api.get(read).status_code != 200:
                wrong.append(f"GET {read} -> {api.get(read).status_code}")
        if api.post(f"/runs/{run}/heartbeat").status_code != 200:
            wrong.append("POST heartbeat fails after the hand-picked bodies")
        assert api.get(f"/runs/{run}/nudges/1").json()["status"] == "pending"
    assert not wrong, "\n".join(wrong)


def test_point_with_non_finite_time_returns_422(live_server: str) -> None:
    with httpx.Client(base_url=f"{live_server}/api", timeout=10) as api:
        run = _seed_run(api)
        for literal in (b"NaN", b"Infinity"):
            body = b'{"points": [{"key": "t", "step": 1, "value": 1, "time": %s}]}'
            reply = api.post(
                f"/runs/{run}/metrics", content=body % literal, headers=JSON
            )
            assert reply.status_code == 422, reply.text
