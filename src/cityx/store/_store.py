"""The store: submissions, trials, findings, gate decisions and the audit log.

Words used here:

- a *submission* is one packaged AI system, identified by its system id,
  version and artifact digest (``sha256``); recording it twice is a no-op;
- a *trial* runs the checks of a policy against a submission with a seed;
  it is *incomplete* from :meth:`Store.begin_trial` until
  :meth:`Store.finish_trial` stores its results, findings and *gate
  decision* and marks it *complete*, all in one transaction, so a trial
  killed half-way stays incomplete and never half-written;
- the *audit log* is the append-only, hash-chained record of every change
  (see :mod:`cityx.core.audit`); its *head* is the number of entries and the
  newest hash.
- *trusted keys* and *revocations* are the rows of the database-backed
  trust store (:mod:`cityx.interop.trust_db` gives them meaning); importing
  and revoking are audited like every other change.

Every write is one transaction that also appends its audit entries: the
store never holds a change without its record, nor a record without its
change. Writers queue so that two processes never extend the chain from the
same entry (which would fork it): SQLite write transactions begin with
``BEGIN IMMEDIATE``, PostgreSQL ones lock the single ``audit_head`` row
``FOR UPDATE`` before doing anything else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
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
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from cityx.core import StoreError
from cityx.core.audit import (
    GENESIS,
    AuditEntry,
    AuditHead,
    AuditVerification,
    entry_hash,
    sorted_json,
    verify_chain,
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
from ._trust import (
    KEY_FIELDS,
    REVOCATION_FIELDS,
    TrustKeyRecord,
    TrustRevocationRecord,
    check_fields,
    issuers_of,
    key_records,
    revocation_records,
    revoke,
    upsert_key,
)
from .models import (
    COMPLETE,
    HEAD_ROW,
    INCOMPLETE,
    AuditHeadRow,
    AuditRow,
    FindingRow,
    GateRow,
    SubmissionRow,
    TrialRow,
)

ACTOR = "cityx"
"""Who the store's own entries name as actor unless the store is told otherwise."""

FINDING_KEYS = ("id", "check", "title", "severity", "principle")
_MIGRATION_LOCK = 0x63697479_6D696772  # "citymigr": serialises schema upgrades in PostgreSQL
_HINT_NOT_OURS = "point --store at a cityx store, a new file or an empty database"


def default_store_url() -> str:
    """The default store: ``cityx.db`` in the user's data folder (created on open)."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('cityx')) / 'cityx.db'}"


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A trial as stored; ``results`` and ``decision`` are None until it is complete."""

    trial_id: str
    system_id: str
    version: str
    sha256: str
    seed: int
    policy_id: str
    policy_sha256: str
    status: str
    out_dir: str
    plan: Mapping[str, Any]
    results: Mapping[str, Any] | None
    started_at: str
    finished_at: str | None
    decision: str | None


class Store:
    """A cityx store. Open one with :meth:`open`; close it, or use it in ``with``.

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
    ) -> Store:
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

    def append_audit(
        self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> AuditEntry:
        """Append one entry to the audit log, in its own transaction, and return it."""
        for name, value in (("actor", actor), ("action", action)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        _json_text(payload, "the audit payload")  # refuse before taking the lock
        with self._write() as conn:
            return self._append(conn, actor=actor, action=action, subject=subject, payload=payload)

    def append_audit_many(self, entries: Sequence[tuple[str, str, str, Mapping[str, Any]]]) -> int:
        """Append (actor, action, subject, payload) entries in one transaction, in order.

        For high-rate sources (accepted interop messages): one lock of the
        head and one commit for the whole batch. Returns how many were written.
        """
        for actor, action, _, payload in entries:
            if not actor or not action:
                raise ValueError("actor and action must be non-empty strings")
            _json_text(payload, "the audit payload")
        if not entries:
            return 0
        with self._write() as conn:
            for actor, action, subject, payload in entries:
                self._append(conn, actor=actor, action=action, subject=subject, payload=payload)
        return len(entries)

    def audit_entries(self) -> list[AuditEntry]:
        """Every audit entry, by seq."""
        with self._transaction(write=False) as conn:
            return self._entries(conn)

    def _entries(self, conn: Connection) -> list[AuditEntry]:
        rows = conn.execute(sa.select(AuditRow).order_by(AuditRow.seq)).all()
        return [
            AuditEntry(
                int(r.seq),
                r.at,
                r.actor,
                r.action,
                r.subject,
                _stored_payload(r.payload),
                r.prev_hash,
                r.hash,
            )
            for r in rows
        ]

    def head(self) -> AuditHead:
        """(entries, newest hash) of the audit log as it is now.

        Keep it somewhere else (a report, a ticket, another system) and pass
        it to :meth:`verify_audit` later as ``anchor``: that is what reveals a
        truncated or rewritten log, which the chain alone cannot.
        """
        with self._transaction(write=False) as conn:
            last = conn.execute(
                sa.select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
            ).first()
        return AuditHead(int(last.seq), str(last.hash)) if last else AuditHead(0, GENESIS)

    def verify_audit(self, *, anchor: AuditHead | None = None) -> AuditVerification:
        """Check the chain, that it ends at the recorded head, and that it holds ``anchor``."""
        with self._transaction(write=False) as conn:
            entries = self._entries(conn)
            row = conn.execute(
                sa.select(AuditHeadRow.entries, AuditHeadRow.hash).where(
                    AuditHeadRow.id == HEAD_ROW
                )
            ).first()
        if row is None:
            result = verify_chain(entries, anchor=anchor)
            if not result.ok:
                return result
            return AuditVerification(
                False, len(entries), None, "the audit log's head record is missing (tampered?)"
            )
        return verify_chain(entries, head=AuditHead(int(row.entries), str(row.hash)), anchor=anchor)

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
        manifest: Mapping[str, Any],
    ) -> None:
        """Record a submission once; recording the same one again changes nothing."""
        manifest_sha256 = _digest(manifest, "the manifest")
        with self._write() as conn:
            if self._submission_id(conn, system_id, version, sha256) is not None:
                return
            conn.execute(
                sa.insert(SubmissionRow).values(
                    system_id=system_id,
                    version=version,
                    vendor=vendor,
                    kind=kind,
                    sha256=sha256,
                    path=path,
                    manifest=dict(manifest),
                    recorded_at=_now(),
                )
            )
            self._append(
                conn,
                actor=self.actor,
                action="submission.recorded",
                subject=f"{system_id}@{version}",
                payload={
                    "system_id": system_id,
                    "version": version,
                    "vendor": vendor,
                    "kind": kind,
                    "sha256": sha256,
                    "manifest_sha256": manifest_sha256,
                },
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
        plan: Mapping[str, Any],
    ) -> None:
        """Store a new trial as incomplete, with its ``trial.started`` entry.

        The submission must have been recorded. If the process dies before
        :meth:`finish_trial`, the trial stays incomplete: that is its true state.
        """
        plan_sha256 = _digest(plan, "the trial plan")
        with self._write() as conn:
            submission_id = self._submission_id(conn, system_id, version, sha256)
            if submission_id is None:
                raise StoreError(
                    f"submission {system_id}@{version} (sha256 {sha256[:12]}...) "
                    "is not in this store",
                    where=self.display_url,
                    hint="record the submission before starting a trial of it",
                )
            if conn.execute(
                sa.select(TrialRow.trial_id).where(TrialRow.trial_id == trial_id)
            ).first():
                raise StoreError(
                    f"trial {trial_id} already exists",
                    where=self.display_url,
                    hint="every trial needs a new id",
                )
            conn.execute(
                sa.insert(TrialRow).values(
                    trial_id=trial_id,
                    submission_id=submission_id,
                    seed=seed,
                    policy_id=policy_id,
                    policy_sha256=policy_sha256,
                    status=INCOMPLETE,
                    out_dir=out_dir,
                    plan=dict(plan),
                    results=None,
                    started_at=_now(),
                    finished_at=None,
                )
            )
            self._append(
                conn,
                actor=self.actor,
                action="trial.started",
                subject=trial_id,
                payload={
                    "submission": f"{system_id}@{version}",
                    "sha256": sha256,
                    "seed": seed,
                    "policy_id": policy_id,
                    "policy_sha256": policy_sha256,
                    "plan_sha256": plan_sha256,
                },
            )

    def finish_trial(
        self,
        *,
        trial_id: str,
        results: Mapping[str, Any],
        findings: Sequence[Mapping[str, Any]],
        gate: Mapping[str, Any],
    ) -> None:
        """Complete a trial: findings, gate decision, results and two audit entries, at once.

        ``findings`` items need the keys id, check, title, severity and
        principle (each is kept whole); ``gate`` needs decision and reasons.
        If any part fails, none of it is written and the trial stays incomplete.
        """
        for i, finding in enumerate(findings):
            missing = [k for k in FINDING_KEYS if k not in finding]
            if missing:
                raise ValueError(f"finding {i} of trial {trial_id} lacks {', '.join(missing)}")
        if "decision" not in gate or "reasons" not in gate:
            raise ValueError(f"the gate decision of trial {trial_id} needs decision and reasons")
        reasons = [str(r) for r in gate["reasons"]]
        results_sha256 = _digest(results, "the trial results")
        findings_sha256 = _digest(list(findings), "the findings")
        now = _now()
        with self._write() as conn:
            trial = conn.execute(
                sa.select(TrialRow.status, TrialRow.policy_id).where(TrialRow.trial_id == trial_id)
            ).first()
            if trial is None:
                raise StoreError(
                    f"trial {trial_id} is not in this store",
                    where=self.display_url,
                    hint="begin the trial before finishing it",
                )
            if trial.status != INCOMPLETE:
                raise StoreError(
                    f"trial {trial_id} is already complete",
                    where=self.display_url,
                    hint="run a new trial instead",
                )
            policy_id = str(gate.get("policy") or trial.policy_id)
            if findings:
                conn.execute(
                    sa.insert(FindingRow),
                    [
                        {
                            "trial_id": trial_id,
                            "finding_id": str(f["id"]),
                            "ordinal": i,
                            "check_id": str(f["check"]),
                            "title": str(f["title"]),
                            "severity": str(f["severity"]),
                            "principle": str(f["principle"]),
                            "body": dict(f),
                        }
                        for i, f in enumerate(findings)
                    ],
                )
            conn.execute(
                sa.insert(GateRow).values(
                    trial_id=trial_id,
                    decision=str(gate["decision"]),
                    reasons=reasons,
                    policy_id=policy_id,
                    decided_at=now,
                )
            )
            conn.execute(
                sa.update(TrialRow)
                .where(TrialRow.trial_id == trial_id)
                .values(status=COMPLETE, results=dict(results), finished_at=now)
            )
            self._append(
                conn,
                actor=self.actor,
                action="trial.completed",
                subject=trial_id,
                payload={
                    "results_sha256": results_sha256,
                    "findings": len(findings),
                    "findings_sha256": findings_sha256,
                },
            )
            self._append(
                conn,
                actor=self.actor,
                action="gate.decided",
                subject=trial_id,
                payload={
                    "decision": str(gate["decision"]),
                    "policy_id": policy_id,
                    "reasons_sha256": _digest(reasons, "the gate reasons"),
                },
            )

    def trial(self, trial_id: str) -> TrialRecord | None:
        """The trial with this id, or None."""
        found = self._trials(TrialRow.trial_id == trial_id, 1)
        return found[0] if found else None

    def trials(self, limit: int = 50) -> list[TrialRecord]:
        """The newest ``limit`` trials, newest first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        return self._trials(sa.true(), limit)

    def _trials(self, where: sa.ColumnElement[bool], limit: int) -> list[TrialRecord]:
        query = (
            sa.select(
                TrialRow.trial_id,
                SubmissionRow.system_id,
                SubmissionRow.version,
                SubmissionRow.sha256,
                TrialRow.seed,
                TrialRow.policy_id,
                TrialRow.policy_sha256,
                TrialRow.status,
                TrialRow.out_dir,
                TrialRow.plan,
                TrialRow.results,
                TrialRow.started_at,
                TrialRow.finished_at,
                GateRow.decision,
            )
            .join(SubmissionRow, SubmissionRow.id == TrialRow.submission_id)
            .outerjoin(GateRow, GateRow.trial_id == TrialRow.trial_id)
            .where(where)
            .order_by(TrialRow.started_at.desc(), TrialRow.trial_id.desc())
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return [TrialRecord(*row) for row in rows]

    def findings(self, trial_id: str) -> list[dict[str, Any]]:
        """The findings of a trial, whole and in the order the trial gave them."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(FindingRow.body)
                .where(FindingRow.trial_id == trial_id)
                .order_by(FindingRow.ordinal)
            ).all()
        return [dict(r.body) for r in rows]

    # -- trust store (rows for cityx.interop.trust_db) --------------------------------

    def put_trust(
        self,
        *,
        issuer: str,
        keys: Sequence[Mapping[str, Any]],
        revoked: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Add or update ``issuer``'s keys and record revocations, in one transaction.

        ``keys`` items hold kid, x, not_before, not_after (ISO text or None),
        types and topics; ``revoked`` items hold kid, at and reason. A kid
        that belongs to another issuer is refused; an earlier revocation of a
        kid wins over a later one. Keys are never deleted.
        """
        check_fields(keys, KEY_FIELDS, "trusted key")
        check_fields(revoked, REVOCATION_FIELDS, "revocation")
        now = _now()
        with self._write() as conn:
            owners = issuers_of(conn, [str(k["kid"]) for k in keys])
            for key in keys:
                owner = owners.get(str(key["kid"]), issuer)
                if owner != issuer:
                    raise StoreError(
                        f"kid {key['kid']} already belongs to {owner}, not {issuer}",
                        where=self.display_url,
                        hint="a key belongs to one issuer: generate a new key",
                    )
                upsert_key(conn, issuer, key, exists=str(key["kid"]) in owners, now=now)
            changed = [
                str(r["kid"])
                for r in revoked
                if revoke(conn, str(r["kid"]), str(r["at"]), str(r["reason"]), now=now)
            ]
            self._append(
                conn,
                actor=self.actor,
                action="trust.imported",
                subject=issuer,
                payload={"keys": sorted(str(k["kid"]) for k in keys), "revoked": sorted(changed)},
            )

    def revoke_trust_key(self, *, kid: str, at: str, reason: str) -> bool:
        """Revoke ``kid`` from ``at`` (ISO text); False if an earlier revocation stands."""
        with self._write() as conn:
            changed = revoke(conn, kid, at, reason, now=_now())
            if changed:
                self._append(
                    conn,
                    actor=self.actor,
                    action="trust.key.revoked",
                    subject=kid,
                    payload={"at": at, "reason": reason},
                )
            return changed

    def trust_keys(self) -> list[TrustKeyRecord]:
        """Every trusted key, by issuer and kid."""
        with self._transaction(write=False) as conn:
            return key_records(conn)

    def trust_revocations(self) -> list[TrustRevocationRecord]:
        """Every revocation, by kid."""
        with self._transaction(write=False) as conn:
            return revocation_records(conn)

    @staticmethod
    def _submission_id(conn: Connection, system_id: str, version: str, sha256: str) -> int | None:
        found = conn.execute(
            sa.select(SubmissionRow.id).where(
                SubmissionRow.system_id == system_id,
                SubmissionRow.version == version,
                SubmissionRow.sha256 == sha256,
            )
        ).scalar()
        return None if found is None else int(found)


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
