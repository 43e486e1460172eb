"""Event webhooks: an owner's subscriptions, and the events queued for them.

Each event is POSTed as `{"id", "type", "createdAt", "data"}` with
`X-Mediagate-Signature` (see `signing`), `X-Mediagate-Event` and `X-Mediagate-Delivery`
(the event id, the same on every retry so receivers can de-duplicate). Deliveries go
through the database outbox (`outbox.py`), so retries survive restarts and any replica
may send them. URLs pass the egress guard when they are stored and again on every connect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from gateway.db import Database
from gateway.egress import HTTP_SCHEMES, EgressPolicy, EgressRefused
from gateway.keys import InstanceSecret
from gateway.settings import Settings
from gateway.studio.ids import new_id
from gateway.studio.models_part2 import StudioWebhook, StudioWebhookDelivery
from gateway.studio.outbox import WebhookOutbox
from gateway.studio.sealbox import SealBox
from gateway.studio.service import InvalidRequest, KeyedLocks, NotFound, Page, check_quota

EVENTS = ("stream.live", "stream.offline", "source.status_changed",
          "destination.status_changed", "chat.message")
WEBHOOK_ID = re.compile(r"^whk_[0-9a-f]{26}$")
MIN_SECRET = 16
MAX_URL = 2000


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def check_url(egress: EgressPolicy, url: str) -> str:
    """A client's delivery URL: http(s), resolving only to addresses the guard permits."""
    if len(url) > MAX_URL:
        raise InvalidRequest(f"url must be at most {MAX_URL} characters")
    try:
        await egress.check_url(url, HTTP_SCHEMES)
        httpx.URL(url)
    except EgressRefused as exc:
        raise InvalidRequest(f"url: {exc}") from None
    except httpx.InvalidURL:
        raise InvalidRequest("url: the URL is not valid") from None
    return url


def check_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET:
        raise InvalidRequest(f"secret must be at least {MIN_SECRET} characters")
    return secret


@dataclass
class WebhookService:
    settings: Settings
    db: Database
    secret: InstanceSecret
    egress: EgressPolicy
    http: httpx.AsyncClient
    """The egress guard's client: it connects only to addresses the policy permits."""
    _quota_lock: KeyedLocks = field(default_factory=KeyedLocks)

    def __post_init__(self) -> None:
        self.box = SealBox(self.secret, "studio-webhook-secret")
        self.outbox = WebhookOutbox(self.settings, self.db, self.box, self.http)

    def start(self) -> None:
        self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()

    async def wait_idle(self) -> None:
        await self.outbox.wait_idle()

    # -- subscriptions --------------------------------------------------------------------

    async def create(self, owner: str, url: str, events: list[str], secret: str,
                     enabled: bool) -> StudioWebhook:
        unknown = sorted(set(events) - set(EVENTS))
        if unknown or not events:
            raise InvalidRequest(f"events must be a non-empty list of: {', '.join(EVENTS)}")
        check_secret(secret)
        await check_url(self.egress, url)
        webhook_id = new_id("whk")
        webhook = StudioWebhook(
            id=webhook_id, owner=owner, url=url,
            events=" ".join(e for e in EVENTS if e in events),
            secret_sealed=self.box.seal(webhook_id, secret), enabled=enabled,
            created_at=datetime.now(UTC), failures=0,
        )
        async with self._quota_lock(owner), self.db.session() as session:
            count = (await session.execute(select(func.count()).select_from(StudioWebhook)
                                           .where(StudioWebhook.owner == owner))).scalar_one()
            check_quota(count, self.settings.studio_max_webhooks, "webhooks per owner",
                        "STUDIO_MAX_WEBHOOKS")
            session.add(webhook)
        return webhook

    async def list(self, owner: str, after: str | None, limit: int) -> Page[StudioWebhook]:
        async with self.db.session() as session:
            query = select(StudioWebhook).where(StudioWebhook.owner == owner)
            if after is not None:
                query = query.where(StudioWebhook.id > after)
            rows = list((await session.execute(
                query.order_by(StudioWebhook.id).limit(limit + 1))).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    async def get(self, owner: str, webhook_id: str) -> StudioWebhook:
        async with self.db.session() as session:
            row = await session.get(StudioWebhook, webhook_id) \
                if WEBHOOK_ID.fullmatch(webhook_id) else None
        if row is None or row.owner != owner:
            raise NotFound("webhook not found")
        return row

    async def delete(self, owner: str, webhook_id: str) -> None:
        async with self.db.session() as session:
            row = await session.get(StudioWebhook, webhook_id) \
                if WEBHOOK_ID.fullmatch(webhook_id) else None
            if row is None or row.owner != owner:
                raise NotFound("webhook not found")
            await session.delete(row)

    # -- delivery -------------------------------------------------------------------------

    async def emit(self, owner: str, event: str, data: dict[str, Any]) -> None:
        """Queue `event` for every enabled subscription of `owner` that wants it."""
        async with self.db.session() as session:
            rows = list((await session.execute(
                select(StudioWebhook).where(StudioWebhook.owner == owner,
                                            StudioWebhook.enabled.is_(True))
            )).scalars())
        wanted = [row for row in rows if event in row.events.split()]
        if not wanted:
            return
        event_id = new_id("evt")
        body = json.dumps({"id": event_id, "type": event, "createdAt": iso_now(),
                           "data": data})
        now = datetime.now(UTC)
        async with self.db.session() as session:
            session.add_all(StudioWebhookDelivery(
                id=new_id("dlv"), webhook_id=row.id, event_id=event_id, event=event,
                body=body, attempts=0, next_attempt_at=now, created_at=now,
            ) for row in wanted)
        self.outbox.wake()
