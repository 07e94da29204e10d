"""The server's tables: organisations, users, tokens, system owners, query budgets, rulings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Adds tables and touches nothing else, so a 0002 store upgrades with every
row kept. A frozen snapshot, like 0001: no models imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("budget", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column(
            "organisation", sa.String(64), sa.ForeignKey("organisations.name"), nullable=False
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("budget", sa.BigInteger, nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.String(32), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_users_organisation", "users", ["organisation"])
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("user_name", sa.String(64), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_api_tokens_user_name", "api_tokens", ["user_name"])
    op.create_table(
        "system_owners",
        sa.Column("system_id", sa.String(200), primary_key=True),
        sa.Column(
            "organisation", sa.String(64), sa.ForeignKey("organisations.name"), nullable=False
        ),
    )
    op.create_index("ix_system_owners_organisation", "system_owners", ["organisation"])
    op.create_table(
        "query_budgets",
        sa.Column("holder", sa.String(100), primary_key=True),
        sa.Column("system_id", sa.String(200), primary_key=True),
        sa.Column("granted", sa.BigInteger, nullable=False),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.CheckConstraint("spent <= granted", name="ck_query_budgets_within"),
    )
    op.create_table(
        "rulings",
        sa.Column("trial_id", sa.String(128), sa.ForeignKey("trials.trial_id"), primary_key=True),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("conditions", sa.JSON, nullable=False),
        sa.Column("regulator", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("ruled_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rulings")
    op.drop_table("query_budgets")
    op.drop_index("ix_system_owners_organisation", table_name="system_owners")
    op.drop_table("system_owners")
    op.drop_index("ix_api_tokens_user_name", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_users_organisation", table_name="users")
    op.drop_table("users")
    op.drop_table("organisations")
