"""Calls tables: apps (with hashed secrets) and sessions, visible to every replica.

Live media (the session's PeerConnection and its tracks) lives in the media core.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class CallsApp(Base):
    __tablename__ = "calls_apps"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    """`pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`; the secret itself is never stored."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallsSession(Base):
    __tablename__ = "calls_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("calls_apps.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replica_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The gateway process whose media core holds the session's PeerConnection."""
    correlation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    thirdparty: Mapped[bool] = mapped_column(Boolean, default=False)
