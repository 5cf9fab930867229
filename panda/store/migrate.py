"""Bring a database to the newest schema through Alembic's Python API."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from panda.config import migrations_dir
from panda.errors import SchemaOutdated
from panda.store.db import safe_url

logger = logging.getLogger(__name__)


def alembic_config() -> Config:
    """Return an Alembic config that points at panda's ``migrations/`` folder."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database is stamped with, or None if unstamped."""
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """Return the newest revision this version of panda knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision``, the newest by default.

    Raises:
        SchemaOutdated: the database carries a revision this panda does not know,
            so a newer panda wrote it.
    """
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    url = safe_url(engine.url.render_as_string(hide_password=False))

    with engine.begin() as connection:
        before = current_revision(connection)
        known = {revision.revision for revision in script.walk_revisions()}
        if before is not None and before not in known:
            raise SchemaOutdated(
                f"database {url} has schema revision {before!r}, which this "
                "version of panda does not know; upgrade panda or use another "
                "database"
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        after = current_revision(connection)

    if after != before:
        logger.info("migrated database %s from %s to %s", url, before, after)
    else:
        logger.debug("database %s already at schema revision %s", url, after)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the database behind ``engine`` down to ``revision``."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
