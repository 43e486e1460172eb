"""media placement: which replica holds a media session

Revision ID: 0002_media_placement
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_media_placement"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_placement",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("replica_url", sa.String(length=300), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_media_placement")),
    )
    op.create_index(op.f("ix_media_placement_replica_url"), "media_placement",
                    ["replica_url"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_media_placement_replica_url"), table_name="media_placement")
    op.drop_table("media_placement")
