"""brokerage: replica liveness, and which replica holds each registration

Revision ID: brokerage_0002
Revises: brokerage_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "brokerage_0002"
down_revision: str | Sequence[str] | None = "brokerage_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "punch_replica",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_punch_replica")),
    )
    op.create_index(op.f("ix_punch_replica_seen_at"), "punch_replica", ["seen_at"],
                    unique=False)
    with op.batch_alter_table("punch_peer") as batch:
        batch.add_column(sa.Column("replica", sa.String(length=36), nullable=True))
        batch.create_index(batch.f("ix_punch_peer_replica"), ["replica"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("punch_peer") as batch:
        batch.drop_index(batch.f("ix_punch_peer_replica"))
        batch.drop_column("replica")
    op.drop_index(op.f("ix_punch_replica_seen_at"), table_name="punch_replica")
    op.drop_table("punch_replica")
