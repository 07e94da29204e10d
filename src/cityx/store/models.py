"""The store's tables, as typed SQLAlchemy models.

- ``submissions``: what was submitted (one row per system id, version and
  artifact digest).
- ``trials``: one run of the checks against a submission; its *status* is
  ``incomplete`` from the moment it starts until the transaction that stores
  its findings and gate decision marks it ``complete``.
- ``findings`` and ``gate_decisions``: what a complete trial found and decided.
- ``audit_log``: the hash-chained record of every change. The payload is
  stored as the exact canonical JSON text that was hashed, never as a JSON
  column, because a database may normalise JSON (key order, numbers) and
  verification must recompute the very same bytes.
- ``audit_head``: a single row holding the number of entries and the newest
  hash. Appends lock it, so two writers never both extend the same entry, and
  verification compares the chain's end with it, which catches a naive
  truncation (a thorough attacker can rewrite it too: keep a head elsewhere).
- ``live_runs`` and ``live_commands``: world runs under oversight a server
  started (:mod:`cityx.store._live`) and the signed operator commands sent
  to them, with the state the run reported for each.
- ``trust_keys`` and ``trust_revocations``: the database-backed trust store
  of :mod:`cityx.interop.trust_db`. A *trusted key* is an Ed25519 public key
  (``x``, its RFC 7638 thumbprint ``kid``) of one *issuer* (a vendor's
  system), with a *validity window* (``not_before`` .. ``not_after``, either
  open) and *permissions* (glob lists of the message ``types`` and
  ``topics`` it may sign). A *revocation* names a kid and the time it takes
  effect; it is kept apart from the keys so that revoking a kid the store
  does not hold yet still applies once it arrives. Keys are never deleted:
  retire them with a window or a revocation.

Timestamps are ISO-8601 UTC strings (``2026-11-29T04:17:17.123456Z``): the
same text in SQLite and PostgreSQL, and they sort in time order.

The migrations in ``migrations/versions`` create these tables; a test checks
that they agree with these models.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

INCOMPLETE = "incomplete"
COMPLETE = "complete"
HEAD_ROW = 1


class Base(DeclarativeBase):
    pass


class SubmissionRow(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("system_id", "version", "sha256", name="uq_submissions_identity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    vendor: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[str] = mapped_column(String(32))


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        CheckConstraint(f"status IN ('{INCOMPLETE}', '{COMPLETE}')", name="ck_trials_status"),
    )

    trial_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    policy_id: Mapped[str] = mapped_column(Text)
    policy_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    out_dir: Mapped[str] = mapped_column(Text)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[str] = mapped_column(String(32), index=True)
    finished_at: Mapped[str | None] = mapped_column(String(32))


class FindingRow(Base):
    __tablename__ = "findings"

    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.trial_id"), primary_key=True)
    finding_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Findings come back in the order the trial gave them (a report's order).
    ordinal: Mapped[int] = mapped_column(Integer)
    check_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    principle: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class GateRow(Base):
    __tablename__ = "gate_decisions"

    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.trial_id"), primary_key=True)
    decision: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    policy_id: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[str] = mapped_column(String(32))


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint(f"id = {HEAD_ROW}", name="ck_audit_head_single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class TrustKeyRow(Base):
    __tablename__ = "trust_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(256), index=True)
    x: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[str | None] = mapped_column(String(32))
    not_after: Mapped[str | None] = mapped_column(String(32))
    types: Mapped[list[str]] = mapped_column(JSON)
    topics: Mapped[list[str]] = mapped_column(JSON)
    added_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))


class TrustRevocationRow(Base):
    __tablename__ = "trust_revocations"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[str] = mapped_column(String(32))


# -- the server's tables (migration 0003): who may do what, and what they spent ---------------
#
# - ``organisations``: the city and each vendor; ``kind`` is ``city`` or ``vendor``.
# - ``users``: a person or machine in one organisation, with one *role*; the password
#   hash (Argon2, made by the server) is absent for token-only users. ``failed_logins``
#   and ``locked_until`` carry the login lockout across restarts.
# - ``api_tokens``: bearer tokens; only the SHA-256 of the token's random secret is kept.
#   ``kind`` is ``api`` (a machine's token) or ``session`` (a browser's cookie).
# - ``system_owners``: which organisation owns a store system id (server uploads are
#   namespaced ``ORG/SYSTEM``); a system with no owner row is the city's.
# - ``query_budgets``: query *units* granted and spent, per *holder* (``user:NAME`` or
#   ``org:NAME``) and system id, so a budget carries across the system's versions.
# - ``rulings``: a regulator's signed ruling on a trial, at most one per trial.


class OrganisationRow(Base):
    __tablename__ = "organisations"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    budget: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(32))


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation: Mapped[str] = mapped_column(ForeignKey("organisations.name"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    budget: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[str] = mapped_column(String(32))


class TokenRow(Base):
    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[str | None] = mapped_column(String(32))


class SystemOwnerRow(Base):
    __tablename__ = "system_owners"

    system_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    organisation: Mapped[str] = mapped_column(ForeignKey("organisations.name"), index=True)


class BudgetRow(Base):
    __tablename__ = "query_budgets"
    __table_args__ = (CheckConstraint("spent <= granted", name="ck_query_budgets_within"),)

    holder: Mapped[str] = mapped_column(String(100), primary_key=True)
    system_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    granted: Mapped[int] = mapped_column(BigInteger)
    spent: Mapped[int] = mapped_column(BigInteger)


class RulingRow(Base):
    __tablename__ = "rulings"

    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.trial_id"), primary_key=True)
    decision: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    conditions: Mapped[list[str]] = mapped_column(JSON)
    regulator: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    ruled_at: Mapped[str] = mapped_column(String(32))


# Jobs (the server's queued work, :mod:`cityx.store._jobs`): queued -> running -> done|failed.
JOB_STATUSES = ("queued", "running", "done", "failed")


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_jobs_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    system_id: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(64), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(100))
    checks_done: Mapped[int] = mapped_column(Integer)
    checks_total: Mapped[int] = mapped_column(Integer)
    trial_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[str | None] = mapped_column(String(32))


# Live runs (a world run under oversight that a server started, :mod:`cityx.store._live`):
# running -> done | incomplete (its process died) | failed (it refused its input).
LIVE_RUN_STATUSES = ("running", "done", "incomplete", "failed")


class LiveRunRow(Base):
    __tablename__ = "live_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'done', 'incomplete', 'failed')", name="ck_live_runs_status"
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scenario: Mapped[str] = mapped_column(String(100))
    controller: Mapped[str] = mapped_column(String(300))
    seconds: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    pace: Mapped[float | None] = mapped_column(Float)
    requested_by: Mapped[str] = mapped_column(String(100))
    overseers: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    out_dir: Mapped[str] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    finished_at: Mapped[str | None] = mapped_column(String(32))


class LiveCommandRow(Base):
    __tablename__ = "live_commands"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the signed command's jti
    run_id: Mapped[str] = mapped_column(ForeignKey("live_runs.id"), index=True)
    operator: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(16))
    intersection: Mapped[str] = mapped_column(String(200))
    phase: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    records: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
