"""Shared fixtures.

Store and server fixtures: ``db_url`` (SQLite, and PostgreSQL when
``PANDA_TEST_PG_URL`` is set), ``database``, ``server_settings``,
``server_client`` (Starlette's TestClient) and ``live_server`` (a real uvicorn
on a loopback port, for event streams).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from panda.config import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from panda.store.db import Database

PG_URL_VARIABLE = "PANDA_TEST_PG_URL"


# -- store and server ----------------------------------------------------------


def _postgres_url() -> str:
    """Return the test PostgreSQL server's URL; fail in CI, skip elsewhere."""
    url = os.environ.get(PG_URL_VARIABLE)
    if url:
        return url
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{PG_URL_VARIABLE} is not set; CI must test PostgreSQL too")
    pytest.skip(f'{PG_URL_VARIABLE} not set; eval "$(bash scripts/pg_throwaway.sh)"')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database: a SQLite file, or a fresh PostgreSQL
    database created for this test and dropped after it.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'panda.db'}"
        return

    from sqlalchemy import create_engine, make_url

    server_url = make_url(_postgres_url())
    name = f"panda_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """Yield a database handle migrated to head."""
    from panda.store import migrate
    from panda.store.db import Database

    handle = Database.from_url(db_url)
    migrate.upgrade(handle.engine)
    yield handle
    handle.dispose()


@pytest.fixture
def server_settings(db_url: str, tmp_path: Path) -> Settings:
    """Return loopback settings on the test database."""
    return Settings(home=tmp_path, db=db_url, host="127.0.0.1", port=0)


def _test_client_class() -> type[TestClient]:
    # Starlette warns that httpx is deprecated for its TestClient; the pinned
    # versions still work, and warnings are errors in this suite.
    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    return TestClient


@pytest.fixture
def server_client(server_settings: Settings) -> Iterator[TestClient]:
    """Yield a TestClient on ``create_app(server_settings)``, lifespan running."""
    from panda.server.app import create_app

    with _test_client_class()(create_app(server_settings)) as client:
        yield client


@pytest.fixture
def live_server(server_settings: Settings) -> Iterator[str]:
    """Serve the app with uvicorn on a free loopback port; yield its base URL."""
    from panda.server.app import create_app
    from panda.server.thread import serve_in_thread

    with serve_in_thread(create_app(server_settings)) as url:
        yield url
