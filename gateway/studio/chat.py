"""A studio's unified chat: one message store, fan-out through platform adapters.

Every message (sent through the API, written on the built-in chat page, or pushed in by a
platform) is stored first, then: `out` messages are delivered to the enabled platforms
(or the requested subset) concurrently; every stored message wakes this process's page
followers and is announced as a `chat.message` webhook event. Page followers also re-read
the store every second, so messages stored by another replica show up too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.egress import DELIVERY_FAILED
from gateway.keys import InstanceSecret, secrets_equal
from gateway.settings import Settings
from gateway.studio import signing
from gateway.studio.chat_adapters import (
    ChatAdapter,
    ChatEnvelope,
    ChatTarget,
    DeliveryFailed,
    InboundMessage,
    InboundRejected,
)
from gateway.studio.chat_adapters.builtin import PLATFORM as BUILTIN
from gateway.studio.ids import new_id
from gateway.studio.models import Studio
from gateway.studio.models_part2 import (
    StudioChatMessage,
    StudioChatPlatform,
    StudioInboundSignature,
)
from gateway.studio.sealbox import SealBox
from gateway.studio.service import RESOURCE_ID, InvalidRequest, NotFound
from gateway.studio.webhooks import WebhookService, check_secret, check_url, iso_now

log = logging.getLogger("mediagate.studio.chat")

MAX_TEXT = 2000
REPLAY_MEMORY = timedelta(seconds=2 * signing.TOLERANCE_SECONDS)
"""How long past its timestamp an accepted signature is remembered: the whole window in
which it verifies, plus as much again for clocks that differ between replicas."""
FOLLOW_POLL_SECONDS = 1.0
PLATFORM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")


@dataclass
class PlatformView:
    platform: str
    enabled: bool
    url: str | None
    has_secret: bool


@dataclass
class Delivery:
    platform: str
    ok: bool
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"platform": self.platform, "ok": self.ok}
        if self.error is not None:
            body["error"] = self.error
        return body


def envelope(message: StudioChatMessage) -> ChatEnvelope:
    stamp = message.created_at if message.created_at.tzinfo else \
        message.created_at.replace(tzinfo=UTC)
    return ChatEnvelope(
        id=message.id, studio_id=message.studio_id, platform=message.platform,
        author_id=message.author_id, author_display_name=message.author_display_name,
        text=message.text,
        timestamp=stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )


def check_text(text: str) -> str:
    if not text.strip():
        raise InvalidRequest("text must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"text must be at most {MAX_TEXT} characters")
    return text


@dataclass
class ChatService:
    settings: Settings
    db: Database
    secret: InstanceSecret
    webhooks: WebhookService
    adapters: dict[str, ChatAdapter]
    _wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    closing: bool = False

    def __post_init__(self) -> None:
        self.box = SealBox(self.secret, "studio-chat-platform-secret")
        self._viewer_key = self.secret.derive("studio-chat-viewer")

    async def stop(self) -> None:
        self.closing = True
        for event in self._wakeups.values():
            event.set()

    # -- access ---------------------------------------------------------------------------

    async def studio(self, studio_id: str) -> Studio:
        return await self._studio(studio_id)

    async def _studio(self, studio_id: str, owner: str | None = None) -> Studio:
        if not RESOURCE_ID.fullmatch(studio_id):
            raise NotFound("studio not found")
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
        if studio is None or (owner is not None and studio.owner != owner):
            raise NotFound("studio not found")
        return studio

    def viewer_token(self, studio_id: str) -> str:
        digest = hmac.new(self._viewer_key, studio_id.encode(), hashlib.sha256).hexdigest()
        return f"cvt_{digest[:40]}"

    def check_viewer_token(self, studio_id: str, token: str | None) -> bool:
        return bool(token) and secrets_equal(token or "", self.viewer_token(studio_id))

    # -- platforms ------------------------------------------------------------------------

    async def _platform_rows(self, studio_id: str) -> dict[str, StudioChatPlatform]:
        async with self.db.session() as session:
            rows = (await session.execute(select(StudioChatPlatform).where(
                StudioChatPlatform.studio_id == studio_id))).scalars()
            return {row.platform: row for row in rows}

    async def platforms(self, owner: str, studio_id: str) -> list[PlatformView]:
        await self._studio(studio_id, owner)
        rows = await self._platform_rows(studio_id)
        views = []
        for name in self.adapters:
            row = rows.get(name)
            if row is None:
                views.append(PlatformView(name, name == BUILTIN, None, False))
            else:
                views.append(PlatformView(name, row.enabled, row.url,
                                          row.secret_sealed is not None))
        return views

    async def configure(self, owner: str, studio_id: str, platform: str,
                        changes: dict[str, Any]) -> PlatformView:
        adapter = self.adapters.get(platform)
        if adapter is None:
            raise NotFound(f"no chat platform named {platform!r}")
        await self._studio(studio_id, owner)
        if changes.get("url") is not None:
            await check_url(self.webhooks.egress, changes["url"])
        now = datetime.now(UTC)
        async with self.db.session() as session:
            row = (await session.execute(select(StudioChatPlatform).where(
                StudioChatPlatform.studio_id == studio_id,
                StudioChatPlatform.platform == platform))).scalar_one_or_none()
            if row is None:
                row = StudioChatPlatform(id=new_id("cpl"), studio_id=studio_id,
                                         platform=platform, enabled=True, created_at=now,
                                         updated_at=now)
                session.add(row)
            if "url" in changes:
                row.url = changes["url"]
            if changes.get("secret") is not None:
                row.secret_sealed = self.box.seal(row.id, check_secret(changes["secret"]))
            if changes.get("enabled") is not None:
                row.enabled = changes["enabled"]
            row.updated_at = now
            if adapter.needs_url and row.enabled and (not row.url or not row.secret_sealed):
                raise InvalidRequest(f"the {platform} platform needs a url and a secret")
            return PlatformView(platform, row.enabled, row.url, row.secret_sealed is not None)

    async def _target(self, studio_id: str, platform: str,
                      row: StudioChatPlatform | None) -> ChatTarget:
        secret = self.box.open(row.id, row.secret_sealed) if row is not None else None
        return ChatTarget(studio_id, platform, row.url if row else None, secret)

    async def _enabled(self, studio_id: str) -> dict[str, StudioChatPlatform | None]:
        rows = await self._platform_rows(studio_id)
        enabled: dict[str, StudioChatPlatform | None] = {}
        for name in self.adapters:
            row = rows.get(name)
            if (row.enabled if row is not None else name == BUILTIN):
                enabled[name] = row
        return enabled

    async def builtin_enabled(self, studio_id: str) -> bool:
        return BUILTIN in await self._enabled(studio_id)

    # -- messages -------------------------------------------------------------------------

    async def recent(self, owner: str | None, studio_id: str,
                     limit: int) -> list[StudioChatMessage]:
        """The newest `limit` messages, oldest first."""
        await self._studio(studio_id, owner)
        async with self.db.session() as session:
            rows = list((await session.execute(
                select(StudioChatMessage).where(StudioChatMessage.studio_id == studio_id)
                .order_by(StudioChatMessage.id.desc()).limit(limit))).scalars())
        return rows[::-1]

    async def _store(self, studio: Studio, platform: str, direction: str,
                     author_id: str | None, author_name: str, text: str,
                     inbound: InboundMessage | None = None) -> StudioChatMessage:
        message = StudioChatMessage(
            id=new_id("msg"), studio_id=studio.id, platform=platform, direction=direction,
            author_id=author_id, author_display_name=author_name[:200], text=text,
            created_at=datetime.now(UTC),
        )
        async with self.db.session() as session:
            if inbound is not None and inbound.replay_key is not None:
                await self._remember(session, studio.id, platform, inbound)
            session.add(message)
        self._wake(studio.id)
        await self.webhooks.emit(studio.owner, "chat.message", envelope(message).as_json())
        return message

    async def send(self, owner: str, studio_id: str, text: str,
                   platforms: list[str] | None) -> tuple[StudioChatMessage, list[Delivery]]:
        studio = await self._studio(studio_id, owner)
        check_text(text)
        enabled = await self._enabled(studio_id)
        if platforms:
            unknown = sorted(set(platforms) - set(enabled))
            if unknown:
                raise InvalidRequest(f"not an enabled chat platform of this studio: "
                                     f"{', '.join(unknown)}")
            chosen = {name: enabled[name] for name in enabled if name in platforms}
        else:
            chosen = enabled
        message = StudioChatMessage(
            id=new_id("msg"), studio_id=studio_id, platform=BUILTIN, direction="out",
            author_id=owner, author_display_name=owner, text=text,
            created_at=datetime.now(UTC),
        )
        outgoing = envelope(message)

        async def deliver(name: str, row: StudioChatPlatform | None) -> Delivery:
            try:
                await self.adapters[name].deliver(await self._target(studio_id, name, row),
                                                  outgoing)
            except DeliveryFailed as exc:
                # What answered (or did not) stays in the log: to the caller every failure
                # reads the same, or this would be a port scanner.
                log.info("chat %s: delivery to %s failed: %s", studio_id, name, exc)
                return Delivery(name, False, DELIVERY_FAILED)
            return Delivery(name, True)

        deliveries = list(await asyncio.gather(*(deliver(n, r) for n, r in chosen.items())))
        message.deliveries = json.dumps([d.as_json() for d in deliveries])
        async with self.db.session() as session:
            session.add(message)
        self._wake(studio_id)
        await self.webhooks.emit(studio.owner, "chat.message", outgoing.as_json())
        return message, deliveries

    async def receive_from_page(self, studio_id: str, author_name: str,
                                text: str) -> StudioChatMessage:
        studio = await self._studio(studio_id)
        if not await self.builtin_enabled(studio_id):
            raise NotFound("the built-in chat is disabled for this studio")
        name = author_name.strip()
        if not name or len(name) > 200:
            raise InvalidRequest("authorDisplayName must be 1 to 200 characters")
        return await self._store(studio, BUILTIN, "in", None, name, check_text(text))

    async def receive_inbound(self, studio_id: str, platform: str, headers: Mapping[str, str],
                              body: bytes) -> StudioChatMessage:
        """A platform pushed a message in: its adapter authenticates and parses it."""
        studio = await self._studio(studio_id)
        adapter = self.adapters.get(platform) if PLATFORM_NAME.fullmatch(platform) else None
        rows = await self._platform_rows(studio_id)
        row = rows.get(platform)
        if adapter is None or row is None or not row.enabled:
            raise NotFound("no enabled chat platform of that name on this studio")
        message: InboundMessage = adapter.parse_inbound(
            await self._target(studio_id, platform, row), headers, body)
        return await self._store(studio, platform, "in", message.author_id,
                                 message.author_display_name, message.text, message)

    async def _remember(self, session: AsyncSession, studio_id: str, platform: str,
                        message: InboundMessage) -> None:
        """Refuse a signed request accepted before (on any replica), else remember it, in
        the transaction that stores the message."""
        now = datetime.now(UTC)
        await session.execute(delete(StudioInboundSignature)
                              .where(StudioInboundSignature.expires_at < now))
        key = f"{studio_id}/{platform}/{message.replay_key}".encode()
        signed_at = datetime.fromtimestamp(message.signed_at or now.timestamp(), UTC)
        session.add(StudioInboundSignature(digest=hashlib.sha256(key).hexdigest(),
                                           expires_at=signed_at + REPLAY_MEMORY))
        try:
            await session.flush()
        except IntegrityError:
            raise InboundRejected(signing.REJECTED, unauthenticated=True) from None

    # -- following (the built-in page) ----------------------------------------------------

    def _wake(self, studio_id: str) -> None:
        event = self._wakeups.pop(studio_id, None)
        if event is not None:
            event.set()

    async def follow(self, studio_id: str,
                     history: int) -> AsyncIterator[StudioChatMessage | None]:
        """The last `history` messages, then each new one as it is stored, until closing.

        Yields None after each quiet second, so the caller can send keep-alives.
        """
        last: str | None = None
        for message in await self.recent(None, studio_id, history):
            last = message.id
            yield message
        while not self.closing:
            event = self._wakeups.setdefault(studio_id, asyncio.Event())
            async with self.db.session() as session:
                query = select(StudioChatMessage).where(
                    StudioChatMessage.studio_id == studio_id)
                if last is not None:
                    query = query.where(StudioChatMessage.id > last)
                rows = list((await session.execute(
                    query.order_by(StudioChatMessage.id).limit(200))).scalars())
            for message in rows:
                last = message.id
                yield message
            if not rows:
                try:
                    await asyncio.wait_for(event.wait(), FOLLOW_POLL_SECONDS)
                except TimeoutError:
                    yield None


__all__ = ["BUILTIN", "ChatService", "Delivery", "InboundRejected", "PlatformView",
           "envelope", "iso_now"]
