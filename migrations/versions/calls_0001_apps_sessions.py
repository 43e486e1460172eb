"""calls: apps with hashed secrets, sessions

Revision ID: calls_0001
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "calls_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("calls",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calls_apps",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls_apps")),
    )
    op.create_table(
        "calls_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replica_id", sa.String(length=64), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("thirdparty", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["calls_apps.id"],
            name=op.f("fk_calls_sessions_app_id_calls_apps"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls_sessions")),
    )
    op.create_index(
        op.f("ix_calls_sessions_app_id"), "calls_sessions", ["app_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_sessions_app_id"), table_name="calls_sessions")
    op.drop_table("calls_sessions")
    op.drop_table("calls_apps")
