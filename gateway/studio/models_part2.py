"""Studio part 2 tables: the media library (and, as they land, chat and webhooks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
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


class StudioChatMessage(Base):
    """One message of a studio's unified chat: sent through the API or received from a platform."""

    __tablename__ = "studio_chat_messages"
    __table_args__ = (Index("ix_studio_chat_messages_studio_id_id", "studio_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    studio_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("studio_studios.id", ondelete="CASCADE")
    )
    platform: Mapped[str] = mapped_column(String(60))
    """Where it was written: the adapter's platform name (`mediagate` for API sends too)."""
    direction: Mapped[str] = mapped_column(String(3))
    """`out`: sent through the API and fanned out; `in`: received from a platform."""
    author_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    author_display_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    deliveries: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON list of {platform, ok, error?} for `out` messages."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioChatPlatform(Base):
    """A chat platform's settings for one studio (the built-in chat needs no row)."""

    __tablename__ = "studio_chat_platforms"
    __table_args__ = (UniqueConstraint("studio_id", "platform"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    studio_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("studio_studios.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(60))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioWebhook(Base):
    """An owner's event subscription: signed POSTs of the listed events to `url`."""

    __tablename__ = "studio_webhooks"
    __table_args__ = (Index("ix_studio_webhooks_owner_id", "owner", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[str] = mapped_column(Text)
    """Space-separated event names."""
    secret_sealed: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """Outcome of the latest delivery: `delivered`, or why it failed."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Deliveries given up on after every retry, since the last success."""


class StudioConnection(Base):
    """A linked platform account: OAuth tokens or a manual RTMP URL + key, sealed at rest."""

    __tablename__ = "studio_connections"
    __table_args__ = (Index("ix_studio_connections_owner_id", "owner", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(60))
    connection_type: Mapped[str] = mapped_column(String(10))
    """oauth | manual."""
    display_name: Mapped[str] = mapped_column(String(200))
    external_user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    avatar_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    granted_scopes: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Space-separated."""
    status: Mapped[str] = mapped_column(String(20))
    """active | needs_reauth | expired | revoked."""
    access_token_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    refresh_token_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rtmp_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    stream_key_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    connected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refresh_claimed_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    """A replica refreshing the token holds it until then, so replicas do not race."""


class StudioOAuthState(Base):
    """A pending OAuth link: the `state` (stored as its hash), PKCE verifier and owner."""

    __tablename__ = "studio_oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(60))
    code_verifier_sealed: Mapped[str] = mapped_column(Text)
    redirect_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioWebhookDelivery(Base):
    """The webhook outbox: one event for one webhook, until it is taken or given up on.

    Any replica's worker claims a due row (`claimed_by` / `claimed_until`, a lease that
    outlives one attempt), POSTs it, then deletes it or schedules the next attempt.
    """

    __tablename__ = "studio_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_studio_webhook_deliveries_next_attempt_at", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("studio_webhooks.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(40))
    """The id receivers see (`X-Mediagate-Delivery` and the body's `id`) on every attempt."""
    event: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioInboundSignature(Base):
    """A signed inbound chat request already accepted: refused if it comes again before
    `expires_at` (the primary key makes two replicas racing on one replay safe)."""

    __tablename__ = "studio_inbound_signatures"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
