"""Punch tables: sessions, their streams, and the peers registered on each stream.

Everything another replica must see lives here; only WebSockets and relay processes
live in process memory. Each process beats its `punch_replica` row every second, so the
registrations of a process that died are free within seconds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class PunchSession(Base):
    __tablename__ = "punch_session"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    latency: Mapped[int] = mapped_column(Integer)
    ttl: Mapped[int] = mapped_column(Integer)
    passphrase: Mapped[str] = mapped_column(String(79))
    pbkeylen: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PunchStream(Base):
    __tablename__ = "punch_stream"
    __table_args__ = (UniqueConstraint("session_name", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("punch_session.name", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    tally: Mapped[str] = mapped_column(String(16))
    relay_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    relay_port_a: Mapped[int | None] = mapped_column(Integer, nullable=True)
    relay_port_b: Mapped[int | None] = mapped_column(Integer, nullable=True)
    relay_sender: Mapped[str | None] = mapped_column(String(1), nullable=True)


class PunchPeer(Base):
    """One side (`a` or `b`) of a stream; the unique pair makes a third peer impossible."""

    __tablename__ = "punch_peer"
    __table_args__ = (UniqueConstraint("stream_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("punch_stream.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(1))
    connection_id: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    srt: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ready: Mapped[bool] = mapped_column(default=False)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    """Refreshed by the process holding the WebSocket; a stale row is a dead socket."""
    replica: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    """The `PunchReplica` holding the WebSocket: when it stops beating, the row is free."""


class PunchReplica(Base):
    """A running gateway process (a fresh id per start) and when it last said it is alive."""

    __tablename__ = "punch_replica"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
