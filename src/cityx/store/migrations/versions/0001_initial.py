"""Initial tables: submissions, trials, findings, gate decisions, audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("vendor", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("system_id", "version", "sha256"),
    )
    op.create_table(
        "trials",
        sa.Column("trial_id", sa.String(64), primary_key=True),
        sa.Column("system_id", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("policy_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("out_dir", sa.Text, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("results", sa.JSON, nullable=True),
        sa.Column("started_at", sa.String(40), nullable=False, index=True),
        sa.Column("finished_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "findings",
        sa.Column("trial_id", sa.String(64), sa.ForeignKey("trials.trial_id"), primary_key=True),
        sa.Column("finding_id", sa.String(200), primary_key=True),
        sa.Column("check_id", sa.String(100), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("principle", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("trial_id", sa.String(64), sa.ForeignKey("trials.trial_id"), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("decided_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_log", "gate_decisions", "findings", "trials", "submissions"):
        op.drop_table(table)
