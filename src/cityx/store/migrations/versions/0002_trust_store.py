"""The trust store: trusted keys and revocations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Adds two tables and touches nothing else, so a 0001 store upgrades with
every row kept. A frozen snapshot, like 0001: no models imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "trust_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(256), nullable=False),
        sa.Column("x", sa.String(64), nullable=False),
        sa.Column("not_before", sa.String(32), nullable=True),
        sa.Column("not_after", sa.String(32), nullable=True),
        sa.Column("types", sa.JSON, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_trust_keys_issuer", "trust_keys", ["issuer"])
    op.create_table(
        "trust_revocations",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_trust_keys_issuer", table_name="trust_keys")
    op.drop_table("trust_revocations")
    op.drop_table("trust_keys")
