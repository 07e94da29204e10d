"""From database errors to :class:`~cityx.core.StoreError`.

SQLAlchemy wraps the driver's exception; the driver's own code says what
happened: SQLite's extended error name (``SQLITE_BUSY``, ``SQLITE_READONLY``,
...) and PostgreSQL's SQLSTATE (``3D000``, ``25006``, ...). Connection
failures in psycopg carry no SQLSTATE, only libpq's text, so those are told
apart by their wording. Every message is one line, names the store by its
display URL (password hidden) and says what to do.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from cityx.core import StoreError

from ._engine import POSTGRESQL, StoreTarget

_RETRY = "wait for it to finish, or use another --store"


def store_error(exc: Exception, target: StoreTarget, *, busy_timeout_s: float) -> StoreError:
    """The StoreError that explains ``exc`` (a SQLAlchemy or driver error)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = _one_line(str(orig))
    where = target.display
    if isinstance(exc, IntegrityError):
        return StoreError(
            f"the store refused the change: {text[:200]}",
            where=where,
            hint="an id is used twice or names something the store does not hold",
        )
    if isinstance(orig, sqlite3.Error):
        return _sqlite_error(orig, text, target, busy_timeout_s)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return _postgres_error(sqlstate, text, where)
    if target.backend == POSTGRESQL and isinstance(exc, DBAPIError):
        return _postgres_connection_error(text, where)
    if isinstance(exc, SQLAlchemyError):
        return StoreError(f"database error: {text[:300]}", where=where)
    return StoreError(f"database error: {type(exc).__name__}: {text[:300]}", where=where)


def _sqlite_error(
    exc: sqlite3.Error, text: str, target: StoreTarget, busy_timeout_s: float
) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    where = target.display
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(
            f"the store is locked by another process (still busy after {busy_timeout_s:g} s)",
            where=where,
            hint=f"{_RETRY}, or allow a longer busy timeout",
        )
    if name.startswith("SQLITE_READONLY"):
        hint = (
            "it was opened with mode=ro: drop that to write"
            if target.read_only
            else "make the file and its folder writable, or use another --store"
        )
        return StoreError("the store is read-only", where=where, hint=hint)
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(
            "cannot open the store file",
            where=where,
            hint="check that it exists (read-only stores are not created) "
            "and that its folder is writable",
        )
    if name == "SQLITE_NOTADB":
        return StoreError(
            "not a cityx store: the file is not a SQLite database",
            where=where,
            hint="point --store at a cityx store or a new file",
        )
    if name.startswith("SQLITE_CORRUPT"):
        return StoreError("the store file is damaged", where=where, hint="restore it from a backup")
    if name.startswith("SQLITE_FULL"):
        return StoreError("the disk is full", where=where, hint="free some space")
    if "no such table" in text:
        return StoreError(
            f"not a cityx store, or a damaged one: {text}",
            where=where,
            hint="point --store at a cityx store or a new file",
        )
    return StoreError(f"database error: {text[:300]}", where=where)


def _postgres_error(sqlstate: str, text: str, where: str) -> StoreError:
    if sqlstate == "25006":
        return StoreError(
            "the store is read-only",
            where=where,
            hint="connect to the primary server or as a user who may write",
        )
    if sqlstate == "42501":
        return StoreError(
            f"permission denied: {text[:200]}",
            where=where,
            hint="grant the user rights on the database, or connect as its owner",
        )
    if sqlstate in ("55P03", "40P01", "40001", "57014"):
        return StoreError("the store is locked by another process", where=where, hint=_RETRY)
    if sqlstate == "42P01":
        return StoreError(
            f"not a cityx store, or a damaged one: {text[:200]}",
            where=where,
            hint="point --store at a cityx database or a new, empty one",
        )
    if sqlstate.startswith("08") or sqlstate.startswith("57P"):
        return StoreError(
            "lost the connection to PostgreSQL",
            where=where,
            hint="check that the server is running, then retry",
        )
    if sqlstate.startswith("53"):
        return StoreError(
            f"the database server ran out of resources: {text[:200]}",
            where=where,
            hint="free disk space or memory on the server",
        )
    return StoreError(f"database error [{sqlstate}]: {text[:300]}", where=where)


def _postgres_connection_error(text: str, where: str) -> StoreError:
    low = text.lower()
    if "database" in low and "does not exist" in low:
        return StoreError(
            "the database does not exist", where=where, hint="create it first (createdb NAME)"
        )
    if ("role" in low and "does not exist" in low) or "authentication failed" in low:
        return StoreError(
            "PostgreSQL refused the user name or password",
            where=where,
            hint="check the user and password in the store URL",
        )
    return StoreError(
        "cannot connect to PostgreSQL",
        where=where,
        hint="check that the server is running and reachable at that host and port",
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
