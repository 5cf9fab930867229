"""Build the panda server: API routers, error handlers, live hub, dashboard files.

``create_app(settings)`` migrates the database before it returns, so a server
never answers on an outdated schema, and refuses to expose write endpoints on a
non-loopback address without a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import ArgumentError, OperationalError
from starlette.concurrency import run_in_threadpool

from panda.config import Settings, is_loopback, web_dir
from panda.errors import PandaError
from panda.protocol import RunOut
from panda.server.errors import install_error_handlers
from panda.server.guard import BodyLimit
from panda.server.live import LiveHub
from panda.server.replies import run_out
from panda.server.routes import (
    checkpoints,
    export,
    metrics,
    nudges,
    plots,
    runs,
    stream,
    sweeps,
)
from panda.store import migrate
from panda.store import runs as stored_runs
from panda.store.db import Database, safe_url

logger = logging.getLogger(__name__)

CRASH_SWEEP_MAX_INTERVAL_S = 5.0


def create_app(settings: Settings) -> FastAPI:
    """Return the panda server for ``settings``, its database migrated to head.

    Raises:
        PandaError: the server would listen beyond this machine without a token,
            or its database cannot be opened.
        SchemaOutdated: a newer panda migrated the database.
    """
    if not is_loopback(settings.host) and not settings.token:
        raise PandaError(
            f"refusing to serve on {settings.host} without a token: anyone who can "
            "reach it could change your runs; set PANDA_TOKEN (or --token), or "
            "listen on 127.0.0.1"
        )

    database = _open_database(settings)
    hub = LiveHub()

    app = FastAPI(
        title="panda",
        summary="Babysit a PyTorch training run",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.hub = hub
    install_error_handlers(app)

    api = APIRouter(prefix="/api")
    for module in (runs, metrics, nudges, checkpoints, stream, plots, export):
        api.include_router(module.router)
    api.include_router(sweeps.router)
    api.include_router(sweeps.runs_router)
    app.include_router(api)
    app.add_api_route("/docs", _api_page, include_in_schema=False)

    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    # Mounted last: "/" would otherwise shadow the API routes.
    app.mount("/", StaticFiles(directory=web_dir(), html=True), name="web")
    return app


def _api_page() -> HTMLResponse:
    """The interactive API page, from the copy of Swagger UI under web/vendor."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="panda API",
        swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/vendor/swagger-ui/favicon-32x32.png",
    )


def _open_database(settings: Settings) -> Database:
    """Open the settings' database and migrate it to head.

    Raises:
        PandaError: the data directory cannot be made, the URL names no
            database panda can use, or the database does not answer.
    """
    url = settings.database_url
    if settings.db is None:
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise PandaError(
                f"cannot create the data directory {settings.home}: "
                f"{error.strerror or error}; pass --home DIR or set PANDA_HOME"
            ) from error
    hint = "use sqlite:///PATH or postgresql+psycopg://USER@HOST/NAME"
    try:
        shown = safe_url(url)
    except ArgumentError as error:
        raise PandaError(f"cannot read the database URL ({error}); {hint}") from error
    try:
        database = Database.from_url(url)
    except ArgumentError as error:
        raise PandaError(f"cannot use database {shown} ({error}); {hint}") from error

    logger.info("database %s", shown)
    try:
        migrate.upgrade(database.engine)
    except OperationalError as error:
        database.dispose()
        reason = str(error.orig or error).strip().splitlines()[0]
        raise PandaError(f"cannot open database {shown}: {reason}") from error
    except BaseException:
        database.dispose()
        raise
    return database


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    hub: LiveHub = app.state.hub
    hub.bind(asyncio.get_running_loop())
    sweeper = asyncio.create_task(_sweep_crashed_runs(app))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        hub.close()
        app.state.database.dispose()


async def _sweep_crashed_runs(app: FastAPI) -> None:
    """Mark crashed, every few seconds, the runs whose heartbeat stopped."""
    settings: Settings = app.state.settings
    database: Database = app.state.database
    hub: LiveHub = app.state.hub
    timeout_s = settings.heartbeat_timeout_s
    interval_s = min(CRASH_SWEEP_MAX_INTERVAL_S, max(0.05, timeout_s / 4))
    while True:
        await asyncio.sleep(interval_s)
        try:
            replies = await run_in_threadpool(_mark_crashed, database, timeout_s)
        except Exception:
            logger.exception("could not check runs for missed heartbeats")
            continue
        for reply in replies:
            hub.publish(reply.id, "run", reply)


def _mark_crashed(database: Database, timeout_s: float) -> list[RunOut]:
    with database.session(write=True) as session:
        marked = stored_runs.mark_crashed_runs(session, timeout_s=timeout_s)
        return [run_out(run) for run in marked]
