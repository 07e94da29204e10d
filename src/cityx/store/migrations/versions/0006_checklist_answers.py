"""Process checklist answers given in the console, with their author and time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Adds one table and touches nothing else. A frozen snapshot: no models imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "checklist_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("answer", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("answered_at", sa.String(32), nullable=False),
        sa.CheckConstraint(
            "answer IN ('yes', 'no', 'n/a', '')", name="ck_checklist_answers_answer"
        ),
    )
    op.create_index("ix_checklist_answers_system", "checklist_answers", ["system_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_checklist_answers_system", table_name="checklist_answers")
    op.drop_table("checklist_answers")
