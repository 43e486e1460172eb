"""studio: linked platform connections and pending OAuth states

Revision ID: studio_0004
Revises: studio_0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "studio_0004"
down_revision: str | Sequence[str] | None = "studio_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studio_connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("connection_type", sa.String(length=10), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("external_user_id", sa.String(length=200), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("granted_scopes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("access_token_sealed", sa.Text(), nullable=True),
        sa.Column("refresh_token_sealed", sa.Text(), nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("rtmp_url", sa.Text(), nullable=True),
        sa.Column("stream_key_sealed", sa.Text(), nullable=True),
        sa.Column("connected_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("refresh_claimed_until", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_connections")),
    )
    op.create_index("ix_studio_connections_owner_id", "studio_connections", ["owner", "id"])
    op.create_table(
        "studio_oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("code_verifier_sealed", sa.Text(), nullable=False),
        sa.Column("redirect_to", sa.Text(), nullable=True),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_studio_oauth_states")),
    )


def downgrade() -> None:
    op.drop_table("studio_oauth_states")
    op.drop_index("ix_studio_connections_owner_id", table_name="studio_connections")
    op.drop_table("studio_connections")
