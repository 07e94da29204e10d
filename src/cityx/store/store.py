"""The store: submissions, trials, findings, gate decisions and the audit log.

SQLite by default (one file in the user's data folder), PostgreSQL by URL.
Every write is one transaction that also appends its audit entries, so the
store never holds a change without its record, nor a record without its
change. Appends are serialised so that two processes never fork the
chain: SQLite write transactions start with ``BEGIN IMMEDIATE`` and
PostgreSQL ones take a transaction-scoped advisory lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from cityx.core import StoreError
from cityx.core.audit import (
    GENESIS,
    AuditEntry,
    AuditVerification,
    canonical_json,
    entry_hash,
    verify_chain,
)

from .models import AuditRow, FindingRow, GateRow, SubmissionRow, TrialRow

_LOCK_KEY = 0x63697479  # "city": the advisory lock that serialises PostgreSQL writes
ACTOR = "cityx"


def default_store_url() -> str:
    folder = Path(platformdirs.user_data_dir("cityx"))
    return f"sqlite:///{folder / 'cityx.db'}"


@dataclass(frozen=True, slots=True)
class TrialRecord:
    trial_id: str
    system_id: str
    version: str
    sha256: str
    seed: int
    policy_id: str
    status: str
    out_dir: str
    started_at: str
    finished_at: str | None
    decision: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _digest(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()


class Store:
    """A connection to a cityx store; use :meth:`open`."""

    def __init__(self, *, url: str, busy_timeout_s: float = 5.0) -> None:
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self._engine: Engine | None = None

    @classmethod
    def open(cls, url: str | None = None, *, busy_timeout_s: float = 5.0) -> Store:
        store = cls(url=url or default_store_url(), busy_timeout_s=busy_timeout_s)
        store.connect()
        return store

    # -- lifecycle -------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.url

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreError("the store is not open", where=self.safe_url)
        return self._engine

    def connect(self) -> None:
        try:
            url = make_url(self.url)
        except ArgumentError as exc:
            raise StoreError(
                "not a store URL",
                where=self.url,
                hint="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
            ) from exc
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() == "sqlite":
            self._engine = self._sqlite_engine(url)
        elif url.get_backend_name() == "postgresql":
            try:
                import psycopg  # noqa: F401  (the optional extra's driver)
            except ImportError as exc:
                raise StoreError(
                    "PostgreSQL support is not installed",
                    where=self.safe_url,
                    hint="pip install 'cityx[postgres]'",
                ) from exc
            self._engine = sa.create_engine(
                url, connect_args={"connect_timeout": 5}, pool_pre_ping=True
            )
        else:
            raise StoreError(
                f"unsupported database {url.get_backend_name()!r}",
                where=self.safe_url,
                hint="use SQLite or PostgreSQL",
            )
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def _sqlite_engine(self, url: sa.URL) -> Engine:
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store's folder: {exc.strerror}", where=str(folder)
                ) from exc
        engine = sa.create_engine(
            url, connect_args={"timeout": self.busy_timeout_s}, poolclass=sa.NullPool
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _: Any) -> None:
            # Let us issue BEGIN ourselves, so that writes can take the lock up front.
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("cityx_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Store:
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
    def _write(self) -> Iterator[Connection]:
        with self._errors(), self.engine.connect() as conn:
            conn.execution_options(cityx_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (DBAPIError, SQLAlchemyError) as exc:
            raise _store_error(exc, self.safe_url) from exc

    def _migrate(self) -> None:
        script_location = str(resources.files("cityx.store") / "migrations")
        cfg = Config()
        cfg.set_main_option("script_location", script_location)
        known = {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}
        with self._write() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current is not None and current not in known:
                raise StoreError(
                    f"the store's schema (revision {current}) is newer than this cityx knows",
                    where=self.safe_url,
                    hint="upgrade cityx",
                )
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # -- audit log -------------------------------------------------------------------

    def _append(
        self,
        conn: Connection,
        *,
        action: str,
        subject: str,
        payload: dict[str, Any],
        actor: str = ACTOR,
    ) -> AuditEntry:
        last = conn.execute(
            sa.select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        at = _now()
        text = canonical_json(payload).decode("utf-8")
        stored = json.loads(text)
        digest = entry_hash(seq, at, actor, action, subject, stored, prev)
        conn.execute(
            sa.insert(AuditRow).values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                payload=text,
                prev_hash=prev,
                hash=digest,
            )
        )
        return AuditEntry(seq, at, actor, action, subject, stored, prev, digest)

    def append_audit(
        self, *, actor: str, action: str, subject: str, payload: dict[str, Any]
    ) -> AuditEntry:
        with self._write() as conn:
            return self._append(conn, action=action, subject=subject, payload=payload, actor=actor)

    def audit_entries(self) -> list[AuditEntry]:
        with self._read() as conn:
            rows = conn.execute(sa.select(AuditRow).order_by(AuditRow.seq)).all()
        entries = []
        for r in rows:
            try:
                payload = json.loads(r.payload)
            except ValueError:
                payload = {"unparseable": r.payload}  # verification will flag it
            entries.append(
                AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, payload, r.prev_hash, r.hash)
            )
        return entries

    def verify_audit(self) -> AuditVerification:
        return verify_chain(self.audit_entries())

    def head(self) -> tuple[int, str]:
        """(number of entries, hash of the newest): keep it elsewhere to detect truncation."""
        with self._read() as conn:
            last = conn.execute(
                sa.select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
            ).first()
        return (int(last[0]), str(last[1])) if last else (0, GENESIS)

    # -- submissions and trials ------------------------------------------------------

    def record_submission(
        self,
        *,
        system_id: str,
        version: str,
        vendor: str,
        kind: str,
        sha256: str,
        path: str,
        manifest: dict[str, Any],
    ) -> None:
        with self._write() as conn:
            exists = conn.execute(
                sa.select(SubmissionRow.id).where(
                    SubmissionRow.system_id == system_id,
                    SubmissionRow.version == version,
                    SubmissionRow.sha256 == sha256,
                )
            ).first()
            if exists:
                return
            conn.execute(
                sa.insert(SubmissionRow).values(
                    system_id=system_id,
                    version=version,
                    vendor=vendor,
                    kind=kind,
                    sha256=sha256,
                    path=path,
                    manifest=manifest,
                    recorded_at=_now(),
                )
            )
            self._append(
                conn,
                action="submission.recorded",
                subject=f"{system_id}@{version}",
                payload={"sha256": sha256, "manifest_sha256": _digest(manifest)},
            )

    def begin_trial(
        self,
        *,
        trial_id: str,
        system_id: str,
        version: str,
        sha256: str,
        seed: int,
        policy_id: str,
        policy_sha256: str,
        out_dir: str,
        plan: dict[str, Any],
    ) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(TrialRow).values(
                    trial_id=trial_id,
                    system_id=system_id,
                    version=version,
                    sha256=sha256,
                    seed=seed,
                    policy_id=policy_id,
                    policy_sha256=policy_sha256,
                    status="incomplete",
                    out_dir=out_dir,
                    plan=plan,
                    started_at=_now(),
                )
            )
            self._append(
                conn,
                action="trial.started",
                subject=trial_id,
                payload={
                    "submission": f"{system_id}@{version}",
                    "sha256": sha256,
                    "seed": seed,
                    "policy": policy_id,
                    "policy_sha256": policy_sha256,
                    "plan": _digest(plan),
                },
            )

    def finish_trial(
        self,
        *,
        trial_id: str,
        results: dict[str, Any],
        findings: list[dict[str, Any]],
        gate: dict[str, Any],
    ) -> None:
        now = _now()
        with self._write() as conn:
            updated = conn.execute(
                sa.update(TrialRow)
                .where(TrialRow.trial_id == trial_id, TrialRow.status == "incomplete")
                .values(status="complete", results=results, finished_at=now)
            )
            if updated.rowcount != 1:
                raise StoreError(
                    f"trial {trial_id} is not an incomplete trial in this store",
                    where=self.safe_url,
                )
            if findings:
                conn.execute(
                    sa.insert(FindingRow),
                    [
                        {
                            "trial_id": trial_id,
                            "finding_id": f["id"],
                            "check_id": f["check"],
                            "title": f["title"],
                            "severity": f["severity"],
                            "principle": f["principle"],
                            "body": f,
                        }
                        for f in findings
                    ],
                )
            conn.execute(
                sa.insert(GateRow).values(
                    trial_id=trial_id,
                    decision=gate["decision"],
                    reasons=list(gate["reasons"]),
                    policy_id=str(gate.get("policy", "")),
                    decided_at=now,
                )
            )
            self._append(
                conn,
                action="trial.completed",
                subject=trial_id,
                payload={"results_sha256": _digest(results), "findings": len(findings)},
            )
            self._append(
                conn,
                action="gate.decided",
                subject=trial_id,
                payload={
                    "decision": gate["decision"],
                    "reasons_sha256": _digest(list(gate["reasons"])),
                },
            )

    def trial(self, trial_id: str) -> TrialRecord | None:
        found = self._trials(sa.and_(TrialRow.trial_id == trial_id), 1)
        return found[0] if found else None

    def trials(self, limit: int = 50) -> list[TrialRecord]:
        return self._trials(sa.true(), limit)

    def _trials(self, where: sa.ColumnElement[bool], limit: int) -> list[TrialRecord]:
        query = (
            sa.select(TrialRow, GateRow.decision)
            .outerjoin(GateRow, GateRow.trial_id == TrialRow.trial_id)
            .where(where)
            .order_by(TrialRow.started_at.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            TrialRecord(
                r.trial_id,
                r.system_id,
                r.version,
                r.sha256,
                r.seed,
                r.policy_id,
                r.status,
                r.out_dir,
                r.started_at,
                r.finished_at,
                r.decision,
            )
            for r in rows
        ]

    def findings(self, trial_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(FindingRow.body)
                .where(FindingRow.trial_id == trial_id)
                .order_by(FindingRow.finding_id)
            ).all()
        return [dict(r.body) for r in rows]


def _store_error(exc: Exception, where: str) -> StoreError:
    text = " ".join(str(getattr(exc, "orig", exc) or exc).split())
    low = text.lower()
    if "database is locked" in low or "database table is locked" in low:
        return StoreError(
            "the store is locked by another process",
            where=where,
            hint="wait for it to finish, or use another --store",
        )
    if "readonly" in low or "read-only" in low:
        return StoreError(
            "the store is read-only",
            where=where,
            hint="check its file permissions or use another --store",
        )
    if "unable to open database" in low:
        return StoreError(
            "cannot open the store file", where=where, hint="check the path and its permissions"
        )
    if "connection" in low and ("refused" in low or "failed" in low or "timeout" in low):
        return StoreError(
            "cannot connect to the database",
            where=where,
            hint="is PostgreSQL running? make test starts the local one",
        )
    if "does not exist" in low and "database" in low:
        return StoreError(
            "the database does not exist", where=where, hint="create it first (createdb NAME)"
        )
    if "no such table" in low or "undefinedtable" in low:
        return StoreError("not a cityx store", where=where)
    return StoreError(f"database error: {text[:300]}", where=where)
