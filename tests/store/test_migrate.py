"""Migrations: an empty database reaches head, matches the models, and goes back."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from panda.errors import SchemaOutdated
from panda.store import migrate
from panda.store.db import make_engine
from panda.store.models import Base


def _diffs(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_on_empty_db_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()

    assert _diffs(db_url) == []


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
    engine.dispose()


def test_downgrade_base_then_upgrade_head_restores_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(engine)
    engine.dispose()
    assert _diffs(db_url) == []


def test_upgrade_with_unknown_revision_raises_schema_outdated(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00d'")

    with pytest.raises(SchemaOutdated, match="'f00d'"):
        migrate.upgrade(engine)
    engine.dispose()


def test_sqlite_engine_sets_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    with engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert (pragma("PRAGMA busy_timeout").scalar() or 0) > 0
        assert pragma("PRAGMA synchronous").scalar() == 1
    engine.dispose()
