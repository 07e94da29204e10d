"""Initial tables: submissions, trials, findings, gate decisions, audit log and head.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

A migration is a frozen snapshot: it spells its tables out rather than
importing the models, which will move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("vendor", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("system_id", "version", "sha256", name="uq_submissions_identity"),
    )
    op.create_table(
        "trials",
        sa.Column("trial_id", sa.String(128), primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("policy_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("out_dir", sa.Text, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("results", sa.JSON, nullable=True),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.CheckConstraint("status IN ('incomplete', 'complete')", name="ck_trials_status"),
    )
    op.create_index("ix_trials_submission_id", "trials", ["submission_id"])
    op.create_index("ix_trials_status", "trials", ["status"])
    op.create_index("ix_trials_started_at", "trials", ["started_at"])
    op.create_table(
        "findings",
        sa.Column("trial_id", sa.String(128), sa.ForeignKey("trials.trial_id"), primary_key=True),
        sa.Column("finding_id", sa.String(200), primary_key=True),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("check_id", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("principle", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("trial_id", sa.String(128), sa.ForeignKey("trials.trial_id"), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("decided_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    # The one row that every append locks and moves forward.
    op.bulk_insert(head, [{"id": 1, "entries": 0, "hash": GENESIS}])


def downgrade() -> None:
    for table in ("audit_head", "audit_log", "gate_decisions", "findings", "trials", "submissions"):
        op.drop_table(table)
