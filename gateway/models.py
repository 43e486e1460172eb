"""Tables the whole gateway shares: the instance's identity and its secrets' metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class Instance(Base):
    """One row: who this installation is, stable across restarts and replicas."""

    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_version: Mapped[str] = mapped_column(String(32))
    last_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SecretMeta(Base):
    """What is known about a secret without storing it: its fingerprint and origin."""

    __tablename__ = "secret_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MediaPlacement(Base):
    """Which replica holds a media session's peer connections (several-replica deployments)."""

    __tablename__ = "media_placement"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    replica_url: Mapped[str] = mapped_column(String(300), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
