"""studio: the webhook delivery outbox and remembered inbound chat signatures

Revision ID: studio_0005
Revises: studio_0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "studio_0005"
down_revision: str | Sequence[str] | None = "studio_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studio_webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_by", sa.String(length=40), nullable=True),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["studio_webhooks.id"], ondelete="CASCADE",
            name=op.f("fk_studio_webhook_deliveries_webhook_id_studio_webhooks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_webhook_deliveries")),
        sa.UniqueConstraint("webhook_id", "event_id",
                            name=op.f("uq_studio_webhook_deliveries_webhook_id")),
    )
    op.create_index("ix_studio_webhook_deliveries_next_attempt_at",
                    "studio_webhook_deliveries", ["next_attempt_at"])
    op.create_table(
        "studio_inbound_signatures",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_studio_inbound_signatures")),
    )
    op.create_index(op.f("ix_studio_inbound_signatures_expires_at"),
                    "studio_inbound_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_studio_inbound_signatures_expires_at"),
                  table_name="studio_inbound_signatures")
    op.drop_table("studio_inbound_signatures")
    op.drop_index("ix_studio_webhook_deliveries_next_attempt_at",
                  table_name="studio_webhook_deliveries")
    op.drop_table("studio_webhook_deliveries")
