"""brokerage: Punch sessions, streams and registered peers

Revision ID: brokerage_0001
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "brokerage_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("brokerage",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "punch_session",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("latency", sa.Integer(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("passphrase", sa.String(length=79), nullable=False),
        sa.Column("pbkeylen", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_punch_session")),
    )
    op.create_index(
        op.f("ix_punch_session_expires_at"), "punch_session", ["expires_at"], unique=False
    )
    op.create_table(
        "punch_stream",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tally", sa.String(length=16), nullable=False),
        sa.Column("relay_host", sa.String(length=255), nullable=True),
        sa.Column("relay_port_a", sa.Integer(), nullable=True),
        sa.Column("relay_port_b", sa.Integer(), nullable=True),
        sa.Column("relay_sender", sa.String(length=1), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_name"], ["punch_session.name"],
            name=op.f("fk_punch_stream_session_name_punch_session"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_punch_stream")),
        sa.UniqueConstraint("session_name", "name", name=op.f("uq_punch_stream_session_name")),
    )
    op.create_index(
        op.f("ix_punch_stream_session_name"), "punch_stream", ["session_name"], unique=False
    )
    op.create_table(
        "punch_peer",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=1), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("srt", sa.String(length=16), nullable=True),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"], ["punch_stream.id"],
            name=op.f("fk_punch_peer_stream_id_punch_stream"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_punch_peer")),
        sa.UniqueConstraint("connection_id", name=op.f("uq_punch_peer_connection_id")),
        sa.UniqueConstraint("stream_id", "label", name=op.f("uq_punch_peer_stream_id")),
    )
    op.create_index(op.f("ix_punch_peer_stream_id"), "punch_peer", ["stream_id"], unique=False)
    op.create_index(op.f("ix_punch_peer_seen_at"), "punch_peer", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_punch_peer_seen_at"), table_name="punch_peer")
    op.drop_index(op.f("ix_punch_peer_stream_id"), table_name="punch_peer")
    op.drop_table("punch_peer")
    op.drop_index(op.f("ix_punch_stream_session_name"), table_name="punch_stream")
    op.drop_table("punch_stream")
    op.drop_index(op.f("ix_punch_session_expires_at"), table_name="punch_session")
    op.drop_table("punch_session")
