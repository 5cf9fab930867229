"""FastAPI dependencies: settings, database sessions, the live hub, write auth."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy.orm import Session

from panda.config import Settings
from panda.protocol import STEP_MAX
from panda.server.live import LiveHub
from panda.store.db import Database

_READ_METHODS = ("GET", "HEAD", "OPTIONS")


def get_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    """Return the app's database handle."""
    database: Database = request.app.state.database
    return database


def get_hub(request: Request) -> LiveHub:
    """Return the app's live event hub."""
    hub: LiveHub = request.app.state.hub
    return hub


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
HubDep = Annotated[LiveHub, Depends(get_hub)]


def get_session(database: DatabaseDep) -> Iterator[Session]:
    """Yield a read session for one request."""
    with database.session() as session:
        yield session


def get_write_session(database: DatabaseDep) -> Iterator[Session]:
    """Yield a session that takes the write lock on its first statement."""
    with database.session(write=True) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


def require_write_token(request: Request, settings: SettingsDep) -> None:
    """Refuse a write without ``Authorization: Bearer <token>`` when a token is set."""
    if settings.token is None or request.method in _READ_METHODS:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), settings.token.encode()
    ):
        return
    raise HTTPException(
        status_code=401,
        detail="this server needs its token for changes: send the header "
        "'Authorization: Bearer <token>' (the client reads PANDA_TOKEN)",
        headers={"WWW-Authenticate": "Bearer"},
    )


WriteAuth = Depends(require_write_token)
"""Router dependency: every non-GET request must carry the server's token."""

RunId = Annotated[int, Path(ge=1, le=STEP_MAX, description="run id")]
NudgeId = Annotated[int, Path(ge=1, le=STEP_MAX, description="nudge id")]
CheckpointId = Annotated[int, Path(ge=1, le=STEP_MAX, description="checkpoint id")]
