"""Studio part 2 tables: the media library (and, as they land, chat and webhooks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class StudioMediaAsset(Base):
    __tablename__ = "studio_media_assets"
    __table_args__ = (Index("ix_studio_media_assets_owner_id", "owner", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    folder: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_type: Mapped[str] = mapped_column(String(100))
    byte_size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    """video | image | audio: guessed from the content type, then set from the probed streams."""
    status: Mapped[str] = mapped_column(String(12))
    """UPLOADING | READY | FAILED."""
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    object_key: Mapped[str] = mapped_column(String(200))
    """The file's path relative to the data dir (a `media` source's url)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
