"""host: identity, paired GameStream and native clients, pending devices, custom library

Revision ID: host_0001
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("host",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_host_settings")),
    )
    op.create_table(
        "host_paired_clients",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=True),
        sa.Column("not_before_unix", sa.BigInteger(), nullable=True),
        sa.Column("not_after_unix", sa.BigInteger(), nullable=True),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_host_paired_clients")),
    )
    op.create_table(
        "host_native_clients",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_host_native_clients")),
    )
    op.create_table(
        "host_pending_devices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_pending_devices")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_host_pending_devices_fingerprint")),
    )
    op.create_table(
        "host_custom_games",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("art", sa.JSON(), nullable=False),
        sa.Column("launch", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_custom_games")),
    )


def downgrade() -> None:
    op.drop_table("host_custom_games")
    op.drop_table("host_pending_devices")
    op.drop_table("host_native_clients")
    op.drop_table("host_paired_clients")
    op.drop_table("host_settings")
