"""The store's base: connection, transactions, schema migrations and the audit chain's tip.

See :mod:`._store` for the words (submission, trial, audit log, trust rows).
Every write goes through :meth:`StoreBase._write`, which queues behind any
other writer (SQLite ``BEGIN IMMEDIATE``; PostgreSQL locks the single
``audit_head`` row ``FOR UPDATE``) so that two processes never extend the
chain from the same entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import platformdirs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from cityx.core import StoreError
from cityx.core.audit import (
    AuditEntry,
    AuditHead,
    entry_hash,
    sorted_json,
)

from ._engine import (
    POSTGRESQL,
    WRITE_OPTION,
    StoreTarget,
    create_engine,
    display_url,
    parse_store_url,
)
from ._errors import store_error
from .models import (
    HEAD_ROW,
    AuditHeadRow,
    AuditRow,
)

ACTOR = "cityx"
"""Who the store's own entries name as actor unless the store is told otherwise."""

FINDING_KEYS = ("id", "check", "title", "severity", "principle")
_MIGRATION_LOCK = 0x63697479_6D696772  # "citymigr": serialises schema upgrades in PostgreSQL
_HINT_NOT_OURS = "point --store at a cityx store, a new file or an empty database"


def default_store_url() -> str:
    """The default store: ``cityx.db`` in the user's data folder (created on open)."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('cityx')) / 'cityx.db'}"


class StoreBase:
    """Connection, transactions, schema migrations and appending to the audit chain.

    The constructor only keeps its options. ``busy_timeout_s``: how long a
    SQLite writer waits for another one before the store reports it locked.
    ``connect_timeout_s``: how long to wait for PostgreSQL to answer.
    ``actor``: who the store's own audit entries name.
    """

    def __init__(
        self,
        *,
        url: str,
        busy_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        actor: str = ACTOR,
    ) -> None:
        for name, value in (
            ("busy_timeout_s", busy_timeout_s),
            ("connect_timeout_s", connect_timeout_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not actor:
            raise ValueError("actor must be a non-empty string")
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.actor = actor
        self._target: StoreTarget | None = None
        self._engine: Engine | None = None

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        busy_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        actor: str = ACTOR,
    ) -> Self:
        """Connect to the store at ``url`` (default: :func:`default_store_url`), migrating it.

        Raises StoreError if it cannot be reached, is locked, is not a cityx
        store, or was made by a newer cityx.
        """
        store = cls(
            url=default_store_url() if url is None else url,
            busy_timeout_s=busy_timeout_s,
            connect_timeout_s=connect_timeout_s,
            actor=actor,
        )
        store._connect()
        return store

    @property
    def display_url(self) -> str:
        """The store URL with any password hidden."""
        return self._target.display if self._target else display_url(self.url)

    def __repr__(self) -> str:
        state = "open" if self._engine is not None else "closed"
        return f"Store(url={self.display_url!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------

    def _connect(self) -> None:
        if self._engine is not None:
            return
        target = parse_store_url(self.url)
        engine = create_engine(
            target, busy_timeout_s=self.busy_timeout_s, connect_timeout_s=self.connect_timeout_s
        )
        self._target, self._engine = target, engine
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release every connection; the store can no longer be used."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions ----------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        if self._engine is None or self._target is None:
            raise StoreError(
                "the store is not open", where=self.display_url, hint="use Store.open(url)"
            )
        target = self._target
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                elif target.backend == POSTGRESQL:
                    # One snapshot for all the reads, e.g. the audit log and its head.
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise store_error(exc, target, busy_timeout_s=self.busy_timeout_s) from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._transaction(write=True) as conn:
            # Queue behind any other writer before reading anything.
            self._lock_head(conn)
            yield conn

    def _migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("cityx.store") / "migrations"))
        script = ScriptDirectory.from_config(cfg)
        with self._transaction(write=False) as conn:
            if self._schema_is_current(conn, script):
                return
        try:
            with self._transaction(write=True) as conn:
                if conn.dialect.name == POSTGRESQL:
                    # Two processes opening a new database at once must not both create it.
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                if self._schema_is_current(conn, script):
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except CommandError as exc:
            raise StoreError(
                f"cannot upgrade the store's schema: {exc}", where=self.display_url
            ) from exc

    def _schema_is_current(self, conn: Connection, script: ScriptDirectory) -> bool:
        current = set(MigrationContext.configure(conn).get_current_heads())
        if not current:
            if sa.inspect(conn).get_table_names():
                raise StoreError(
                    "not a cityx store: the database holds other tables",
                    where=self.display_url,
                    hint=_HINT_NOT_OURS,
                )
            return False
        known = {rev.revision for rev in script.walk_revisions()}
        if current - known:
            raise StoreError(
                f"the store's schema (revision {', '.join(sorted(current - known))}) "
                "is newer than this cityx knows",
                where=self.display_url,
                hint="upgrade cityx to use this store",
            )
        return current == set(script.get_heads())

    # -- audit log -------------------------------------------------------------------

    def _lock_head(self, conn: Connection) -> AuditHead:
        # FOR UPDATE locks the row in PostgreSQL; SQLite ignores it (BEGIN IMMEDIATE did it).
        row = conn.execute(
            sa.select(AuditHeadRow.entries, AuditHeadRow.hash)
            .where(AuditHeadRow.id == HEAD_ROW)
            .with_for_update()
        ).first()
        if row is None:
            raise StoreError(
                "the audit log's head record is missing: the store was damaged or tampered with",
                where=self.display_url,
                hint="run 'cityx audit verify' and restore the store from a backup",
            )
        return AuditHead(int(row.entries), str(row.hash))

    def _append(
        self, conn: Connection, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> AuditEntry:
        text = _json_text(payload, "the audit payload")
        stored = json.loads(text)
        head = self._lock_head(conn)
        seq, at = head.entries + 1, _now()
        digest = entry_hash(seq, at, actor, action, subject, stored, head.hash)
        conn.execute(
            sa.insert(AuditRow).values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                payload=text,
                prev_hash=head.hash,
                hash=digest,
            )
        )
        conn.execute(
            sa.update(AuditHeadRow)
            .where(AuditHeadRow.id == HEAD_ROW)
            .values(entries=seq, hash=digest)
        )
        return AuditEntry(seq, at, actor, action, subject, stored, head.hash, digest)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json_text(obj: Any, what: str) -> str:
    try:
        return sorted_json(obj).decode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} cannot be stored as JSON: {exc}") from exc


def _digest(obj: Any, what: str) -> str:
    return hashlib.sha256(_json_text(obj, what).encode("utf-8")).hexdigest()


def _stored_payload(text: str) -> Mapping[str, Any]:
    # A payload that is not the exact canonical text it was hashed as was
    # changed after the fact; hand verification something that cannot match.
    try:
        payload = json.loads(text)
        if isinstance(payload, dict) and sorted_json(payload).decode("utf-8") == text:
            return payload
    except ValueError:
        pass
    return {"<payload altered outside cityx>": text}
