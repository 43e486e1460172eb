"""studio: unified chat messages, chat platforms, webhooks

Revision ID: studio_0003
Revises: studio_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "studio_0003"
down_revision: str | Sequence[str] | None = "studio_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studio_chat_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("studio_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("author_id", sa.String(length=200), nullable=True),
        sa.Column("author_display_name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["studio_id"], ["studio_studios.id"], ondelete="CASCADE",
            name=op.f("fk_studio_chat_messages_studio_id_studio_studios"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_chat_messages")),
    )
    op.create_index("ix_studio_chat_messages_studio_id_id", "studio_chat_messages",
                    ["studio_id", "id"])
    op.create_table(
        "studio_chat_platforms",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("studio_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["studio_id"], ["studio_studios.id"], ondelete="CASCADE",
            name=op.f("fk_studio_chat_platforms_studio_id_studio_studios"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_chat_platforms")),
        sa.UniqueConstraint("studio_id", "platform",
                            name=op.f("uq_studio_chat_platforms_studio_id")),
    )
    op.create_index(op.f("ix_studio_chat_platforms_studio_id"), "studio_chat_platforms",
                    ["studio_id"])
    op.create_table(
        "studio_webhooks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_status", sa.String(length=200), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_webhooks")),
    )
    op.create_index("ix_studio_webhooks_owner_id", "studio_webhooks", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_studio_webhooks_owner_id", table_name="studio_webhooks")
    op.drop_table("studio_webhooks")
    op.drop_index(op.f("ix_studio_chat_platforms_studio_id"), table_name="studio_chat_platforms")
    op.drop_table("studio_chat_platforms")
    op.drop_index("ix_studio_chat_messages_studio_id_id", table_name="studio_chat_messages")
    op.drop_table("studio_chat_messages")
