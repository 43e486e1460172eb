"""studio: API keys, studios, sources, destinations

Revision ID: studio_0001
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "studio_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("studio",)
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studio_api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_studio_api_keys_key_hash")),
    )
    op.create_table(
        "studio_studios",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("auto_go_live", sa.Boolean(), nullable=False),
        sa.Column("auto_go_offline_on_drop", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_opened_at", TZ, nullable=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("live_instance", sa.String(length=36), nullable=True),
        sa.Column("live_heartbeat_at", TZ, nullable=True),
        sa.Column("encoder_stream_id", sa.String(length=40), nullable=True),
        sa.Column("live_started_at", TZ, nullable=True),
        sa.Column("broadcast_started_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_studios")),
    )
    op.create_index("ix_studio_studios_owner_id", "studio_studios", ["owner", "id"])
    op.create_table(
        "studio_sources",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("studio_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["studio_id"], ["studio_studios.id"], ondelete="CASCADE",
            name=op.f("fk_studio_sources_studio_id_studio_studios"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_sources")),
    )
    op.create_index(op.f("ix_studio_sources_studio_id"), "studio_sources", ["studio_id"])
    op.create_table(
        "studio_destinations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("studio_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("rtmp_url", sa.Text(), nullable=True),
        sa.Column("stream_key_sealed", sa.Text(), nullable=True),
        sa.Column("connection_id", sa.String(length=60), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("vertical", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["studio_id"], ["studio_studios.id"], ondelete="CASCADE",
            name=op.f("fk_studio_destinations_studio_id_studio_studios"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_destinations")),
    )
    op.create_index(
        op.f("ix_studio_destinations_studio_id"), "studio_destinations", ["studio_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_studio_destinations_studio_id"), table_name="studio_destinations")
    op.drop_table("studio_destinations")
    op.drop_index(op.f("ix_studio_sources_studio_id"), table_name="studio_sources")
    op.drop_table("studio_sources")
    op.drop_index("ix_studio_studios_owner_id", table_name="studio_studios")
    op.drop_table("studio_studios")
    op.drop_table("studio_api_keys")
