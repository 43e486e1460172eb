"""Studio tables: API keys, studios, sources, destinations.

Ids are `<prefix>_<12 hex ms><12 hex random>`, so keyset pagination on id ascending lists
rows in creation order. Stream keys are stored only as AES-GCM ciphertext.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class StudioApiKey(Base):
    __tablename__ = "studio_api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 hex of the whole `sk_live_...` key; the key itself is shown once."""
    prefix: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(Text)
    """Space-separated scope strings."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Studio(Base):
    __tablename__ = "studio_studios"
    __table_args__ = (Index("ix_studio_studios_owner_id", "owner", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    auto_go_live: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_go_offline_on_drop: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    live_instance: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The gateway process (replica) running the broadcast while `live`."""
    live_heartbeat_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    """Refreshed by that process every few seconds; a stale one means it is gone."""
    encoder_stream_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    live_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    broadcast_started_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class StudioSource(Base):
    __tablename__ = "studio_sources"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    studio_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("studio_studios.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioDestination(Base):
    __tablename__ = "studio_destinations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    studio_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("studio_studios.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(60))
    rtmp_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    stream_key_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    """base64url(nonce || AES-GCM ciphertext), bound to the destination id."""
    connection_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    vertical: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

from gateway.studio import models_part2 as _part2  # noqa: E402, F401  (part 2 tables)
