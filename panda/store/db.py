"""Engines and sessions for SQLite and PostgreSQL, and the dialect quirks between them.

SQLite gets WAL, foreign keys, a busy timeout and ``synchronous=NORMAL`` on every
new connection. Write sessions on SQLite start with ``BEGIN IMMEDIATE`` so that two
threads never both read under a shared lock and then fail to upgrade it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Dialect, Engine, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Insert

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "panda_write"


def is_sqlite(engine: Engine | Connection) -> bool:
    """Tell whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def safe_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, fit for a log line."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``, with panda's per-connection SQLite settings.

    Args:
        url: a SQLAlchemy URL, such as ``sqlite:///panda.db`` or
            ``postgresql+psycopg://user@host/db``.
        **kwargs: passed on to :func:`sqlalchemy.create_engine`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)

    # FastAPI runs sync routes in a threadpool, so a connection may change threads.
    connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling is switched off; _begin_sqlite_transaction
    # emits BEGIN itself, which also makes SQLite's transactional DDL work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def insert_ignoring_duplicates(
    session: Session, table: Table, index_elements: list[str]
) -> Insert:
    """Return ``INSERT .. ON CONFLICT (index_elements) DO NOTHING`` for the session's
    database, so a row that is already there is silently kept as it was.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(
            index_elements=index_elements
        )
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=index_elements
        )
    raise NotImplementedError(
        f"panda supports SQLite and PostgreSQL, not {dialect}; "
        "use a sqlite:// or postgresql+psycopg:// URL"
    )


def executemany_raw(
    session: Session,
    statement: ClauseElement,
    rows: Iterable[dict[str, Any]] | Iterable[tuple[Any, ...]],
    names: Sequence[str] | None = None,
) -> None:
    """Run ``statement`` once per row straight on the DBAPI cursor.

    For hot paths with plain int, float, bytes and None parameters: it skips
    SQLAlchemy's per-row parameter processing, which costs more than the
    database itself on large batches. Rows are dicts, or tuples whose values
    follow ``names``; tuples already in the statement's positional order go
    to the driver as they are. It joins the session's transaction.
    """
    connection = session.connection()
    sql, order = _compiled(statement, connection.dialect)
    params: Iterable[Any] = rows
    if names is not None:
        if not connection.dialect.positional:
            params = [dict(zip(names, row, strict=True)) for row in rows]
        elif list(order) != list(names):
            where = [list(names).index(name) for name in order]
            tuples = cast("Iterable[tuple[Any, ...]]", rows)
            params = [tuple(row[i] for i in where) for row in tuples]
    elif connection.dialect.positional:
        named = cast("Iterable[dict[str, Any]]", rows)
        params = [tuple(row[name] for name in order) for row in named]
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, params)  # type: ignore[arg-type]
    finally:
        cursor.close()


def fetch_raw(
    session: Session, statement: ClauseElement, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Return all rows of a select, unprocessed by SQLAlchemy.

    With ``params``, ``statement`` should be built once (a module constant):
    its SQL is compiled once per database kind. Without, parameters bound into
    the statement are rendered inline, which is safe only for numbers. Either
    way it avoids SQLAlchemy's per-row result processing on large reads.
    """
    connection = session.connection()
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if params is None:
            compiled = statement.compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}
            )
            cursor.execute(str(compiled))
        else:
            sql, order = _compiled(statement, connection.dialect)
            if connection.dialect.positional:
                cursor.execute(sql, tuple(params[name] for name in order))
            else:
                cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


@functools.lru_cache(maxsize=256)
def _compiled(
    statement: ClauseElement, dialect: Dialect
) -> tuple[str, tuple[str, ...]]:
    """Return the statement's SQL for ``dialect`` and its parameters' order."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), tuple(getattr(compiled, "positiontup", None) or ())


class Database:
    """An engine with one session factory for reads and one for writes.

    Sessions keep their objects loaded after commit, so a route can build its
    reply from what it just wrote.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._write = sessionmaker(write_engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        """Create a database handle for ``url`` (see :func:`make_engine`)."""
        return cls(make_engine(url, **kwargs))

    def make_session(self, *, write: bool = False) -> Session:
        """Return a new session; ``write=True`` takes SQLite's write lock at once."""
        return self._write() if write else self._read()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """Open a session, roll back whatever is uncommitted, and close it."""
        session = self.make_session(write=write)
        try:
            yield session
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
