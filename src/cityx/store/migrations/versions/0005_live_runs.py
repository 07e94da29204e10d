"""Live runs: world runs under oversight started by the server, and their operator commands.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Adds two tables and touches nothing else. A frozen snapshot: no models imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "live_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("scenario", sa.String(100), nullable=False),
        sa.Column("controller", sa.String(300), nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("pace", sa.Float, nullable=True),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("overseers", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("out_dir", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'incomplete', 'failed')", name="ck_live_runs_status"
        ),
    )
    op.create_index("ix_live_runs_status", "live_runs", ["status"])
    op.create_table(
        "live_commands",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("live_runs.id"), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("intersection", sa.String(200), nullable=False),
        sa.Column("phase", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=True),
        sa.Column("records", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("sent_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_live_commands_run_id", "live_commands", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_live_commands_run_id", table_name="live_commands")
    op.drop_table("live_commands")
    op.drop_index("ix_live_runs_status", table_name="live_runs")
    op.drop_table("live_runs")
