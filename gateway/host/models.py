"""Host-management tables: identity, paired clients, pending devices, custom library entries.

Everything another replica must see lives here; live pairing handshakes and the stats ring
stay in process memory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class HostSetting(Base):
    """Small key/value facts about the host (its `uniqueid`)."""

    __tablename__ = "host_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class HostPairedClient(Base):
    """A GameStream (Moonlight) client whose certificate is pinned."""

    __tablename__ = "host_paired_clients"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    cert_pem: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(512), nullable=True)
    not_before_unix: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    not_after_unix: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HostNativeClient(Base):
    """A native (punktfunk/1) client paired by SPAKE2 or by delegated approval."""

    __tablename__ = "host_native_clients"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    paired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HostPendingDevice(Base):
    """An unpaired native device that knocked while pairing is required."""

    __tablename__ = "host_pending_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HostCustomGame(Base):
    """A user-curated library entry."""

    __tablename__ = "host_custom_games"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(512))
    art: Mapped[dict[str, str | None]] = mapped_column(JSON)
    launch: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
