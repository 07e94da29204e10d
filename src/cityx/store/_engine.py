"""Store URLs and engines: which database, how to connect, how writers queue.

A *store URL* names the database:

- ``sqlite:///PATH`` a SQLite file (its folder is created);
  ``sqlite:///file:PATH?mode=ro&uri=true`` the same file, read-only;
  ``sqlite://`` a private in-memory store (for tests and dry runs);
- ``postgresql://USER[:PASSWORD]@HOST:PORT/DB`` a PostgreSQL database, reached
  through psycopg 3 (the ``postgres`` extra).

The *display URL* is the same URL with the password hidden: the only form
that goes into messages.

*Writers queue*: every write transaction in SQLite starts with
``BEGIN IMMEDIATE``, which takes the database's write lock up front (waiting
up to the busy timeout), so two processes cannot both read the same audit
head and then both extend it. In PostgreSQL the store locks the single
``audit_head`` row instead (see ``_store``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, pool
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError

from cityx.core import StoreError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
WRITE_OPTION = "cityx_write"
"""Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE."""

_HINT_URL = "use sqlite:///PATH.db or postgresql://USER@HOST:PORT/DB"
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """A parsed store URL: what to connect to, and what to call it in messages."""

    url: sa.URL
    display: str
    backend: str
    path: Path | None = None
    read_only: bool = False
    memory: bool = False


def display_url(text: str) -> str:
    """``text`` with any password replaced by ``***``."""
    try:
        return sa.make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not a URL we can parse: it cannot be trusted to hide a password either.
        return text if "@" not in text else "<store URL>"


def parse_store_url(text: str) -> StoreTarget:
    """Check a store URL and pick the driver; no I/O."""
    try:
        url = sa.make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise StoreError("not a store URL", where=display_url(text), hint=_HINT_URL) from exc
    display = url.render_as_string(hide_password=True)
    if url.drivername in _SQLITE_DRIVERS:
        # No password to hide, and rendering would escape "file:" into "file%3A".
        return _sqlite_target(url, text)
    if url.drivername in _POSTGRES_DRIVERS:
        return StoreTarget(url.set(drivername="postgresql+psycopg"), display, POSTGRESQL)
    raise StoreError(
        f"unsupported database or driver {url.drivername!r}", where=display, hint=_HINT_URL
    )


def _sqlite_target(url: sa.URL, display: str) -> StoreTarget:
    url = url.set(drivername="sqlite+pysqlite")
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return StoreTarget(url, display, SQLITE, memory=True)
    if database.startswith("file:"):
        # SQLite's URI form: without uri=true pysqlite would create a file called "file:...".
        if url.query.get("uri") != "true":
            url = url.update_query_dict({"uri": "true"})
        location = database[len("file:") :].split("?", 1)[0]
        if location.startswith("//"):  # file://HOST/PATH: SQLite accepts only localhost
            location = "/" + location[2:].partition("/")[2]
        return StoreTarget(
            url,
            display,
            SQLITE,
            path=Path(location),
            read_only=url.query.get("mode") == "ro",
        )
    # SQLite does not expand "~"; do it here so the folder we create is the one it opens.
    path = Path(database).expanduser()
    return StoreTarget(url.set(database=str(path)), display, SQLITE, path=path)


def create_engine(
    target: StoreTarget, *, busy_timeout_s: float, connect_timeout_s: float
) -> Engine:
    """An engine for ``target``; creates a SQLite file's folder, connects to nothing yet."""
    try:
        if target.backend == SQLITE:
            return _sqlite_engine(target, busy_timeout_s)
        return _postgres_engine(target, connect_timeout_s)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(
            f"cannot set up the database driver: {exc}", where=target.display, hint=_HINT_URL
        ) from exc


def _sqlite_engine(target: StoreTarget, busy_timeout_s: float) -> Engine:
    if target.path is not None and not target.read_only:
        folder = target.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store's folder {folder}: {exc.strerror}",
                where=target.display,
                hint="check the folder's permissions or use another --store",
            ) from exc
    connect_args: dict[str, Any] = {"timeout": busy_timeout_s}
    if target.memory:
        # One shared connection, or every checkout would see a new empty database.
        connect_args["check_same_thread"] = False
        engine = sa.create_engine(target.url, connect_args=connect_args, poolclass=pool.StaticPool)
    else:
        # No pool: each unit of work opens and closes its connection, so nothing
        # is left open (and no file handle outlives the store).
        engine = sa.create_engine(target.url, connect_args=connect_args, poolclass=pool.NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Stop pysqlite from issuing its own BEGIN, so that _on_begin decides the kind.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(target: StoreTarget, connect_timeout_s: float) -> Engine:
    try:
        import psycopg  # noqa: F401  (only to say which extra is missing)
    except ImportError as exc:
        raise StoreError(
            "PostgreSQL support is not installed",
            where=target.display,
            hint="pip install 'cityx[postgres]'",
        ) from exc
    connect_args: dict[str, Any] = {"application_name": "cityx"}
    if "connect_timeout" not in target.url.query:
        # libpq counts whole seconds and treats anything below 2 as 2.
        connect_args["connect_timeout"] = max(2, math.ceil(connect_timeout_s))
    return sa.create_engine(target.url, connect_args=connect_args, pool_pre_ping=True)
