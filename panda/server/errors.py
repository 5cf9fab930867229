"""Domain errors and invalid requests mapped to HTTP status codes, in one place.

Every reply keeps FastAPI's ``{"detail": "..."}`` shape with a sentence a
person can act on. Bad input is a 4xx, never a 500; a database that is busy or
away is a 503 with ``Retry-After``, which the panda client retries.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from panda.errors import (
    CheckpointNotFound,
    Conflict,
    InvalidNudge,
    NudgeNotFound,
    PandaError,
    RunNotActive,
    RunNotFound,
    SchemaOutdated,
)
from panda.store.runs import BranchNotFound
from panda.store.sweeps import InvalidSweep, SweepNotFound, TrialNotFound

logger = logging.getLogger(__name__)

STATUS_OF_ERROR: dict[type[PandaError], int] = {
    RunNotFound: 404,
    NudgeNotFound: 404,
    CheckpointNotFound: 404,
    BranchNotFound: 404,
    SweepNotFound: 404,
    TrialNotFound: 404,
    InvalidSweep: 422,
    InvalidNudge: 422,
    RunNotActive: 409,
    Conflict: 409,
    SchemaOutdated: 503,
}
_INPUT_REPR_MAX_CHARS = 60


def status_of(error: PandaError) -> int:
    """Return the HTTP status for a domain error; 400 for one not listed."""
    for error_type in type(error).__mro__:
        if error_type in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[error_type]
    return 400


def describe_validation(errors: list[Any]) -> str:
    """Turn pydantic's error list into one readable sentence per problem.

    Example: ``body.points.0.step: Input should be greater than or equal to 0,
    got -1``.
    """
    messages = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ())) or "request"
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "")
            messages.append(f"{where}: the body is not valid JSON ({reason})")
            continue
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") not in ("missing", "value_error"):
            message += _got(error.get("input"))
        messages.append(f"{where}: {message}")
    return "; ".join(messages) or "invalid request"


def _got(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    shown = repr(value)
    if len(shown) > _INPUT_REPR_MAX_CHARS:
        shown = shown[: _INPUT_REPR_MAX_CHARS - 3] + "..."
    return f", got {shown}"


async def _on_panda_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PandaError)
    return JSONResponse({"detail": str(error)}, status_code=status_of(error))


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = describe_validation(list(error.errors()))
    logger.debug("invalid request %s %s: %s", request.method, request.url.path, detail)
    return JSONResponse({"detail": detail}, status_code=422)


async def _on_data_error(request: Request, error: Exception) -> JSONResponse:
    # Input that passed validation but that the database cannot hold, such as
    # NaN inside a JSON config or a NUL character in a text on PostgreSQL.
    logger.debug("database refused a value: %s", error)
    detail = (
        "the database cannot store a value in this request: NaN or infinity in "
        "a config, or a NUL character in a text?"
    )
    return JSONResponse({"detail": detail}, status_code=422)


async def _on_integrity_error(request: Request, error: Exception) -> JSONResponse:
    logger.debug("integrity error: %s", error)
    detail = "the request clashes with stored data; reload and try again"
    return JSONResponse({"detail": detail}, status_code=409)


async def _on_operational_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OperationalError)
    where = f"{request.method} {request.url.path}"
    if "database is locked" in str(error.orig):
        # SQLite's busy timeout ran out behind another long write.
        logger.warning("%s gave up waiting for the database's write lock", where)
        detail = "the database is busy with another write; retry in a moment"
    else:
        logger.error("%s failed in the database: %s", where, error.orig)
        detail = f"the database failed: {error.orig}"
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": "1"}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn errors into 4xx replies."""
    app.add_exception_handler(PandaError, _on_panda_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(OperationalError, _on_operational_error)
