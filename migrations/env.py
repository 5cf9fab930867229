"""Alembic environment for panda's store.

The database comes from the caller, never from panda's settings:
``panda.store.migrate`` hands over an open connection in
``config.attributes["connection"]``; on the command line pass
``alembic -x url=sqlite:///path/to/panda.db upgrade head``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from panda.store.models import Base

target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "no database given; run alembic -x url=sqlite:///path/to/panda.db ..."
        )
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Write the migration SQL for ``--sql`` instead of running it."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the caller's connection, or on a fresh one."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return

    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as fresh_connection:
            _configure(fresh_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
