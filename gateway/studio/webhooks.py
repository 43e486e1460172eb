"""Event webhooks: an owner's subscriptions, and signed deliveries retried with backoff.

Each event is POSTed as `{"id", "type", "createdAt", "data"}` with
`X-Mediagate-Signature` (see `signing`), `X-Mediagate-Event` and `X-Mediagate-Delivery`
(the event id, the same on every retry so receivers can de-duplicate). A non-2xx answer or
a network error is retried after 1 s, 2 s, 4 s ... (STUDIO_WEBHOOK_RETRIES,
STUDIO_WEBHOOK_BACKOFF_INITIAL / _MAX). Deliveries run in the process that saw the event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update

from gateway.db import Database
from gateway.keys import InstanceSecret
from gateway.settings import Settings
from gateway.studio import signing
from gateway.studio.ids import new_id
from gateway.studio.models_part2 import StudioWebhook
from gateway.studio.sealbox import SealBox
from gateway.studio.service import InvalidRequest, NotFound, Page
from gateway.tasks import BackgroundTasks

log = logging.getLogger("mediagate.studio.webhooks")

EVENTS = ("stream.live", "stream.offline", "source.status_changed",
          "destination.status_changed", "chat.message")
WEBHOOK_ID = re.compile(r"^whk_[0-9a-f]{26}$")
TIMEOUT_SECONDS = 10.0
MIN_SECRET = 16


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise InvalidRequest("url must be an http:// or https:// URL")
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
    http: httpx.AsyncClient
    _tasks: BackgroundTasks = field(default_factory=BackgroundTasks)

    def __post_init__(self) -> None:
        self.box = SealBox(self.secret, "studio-webhook-secret")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def wait_idle(self) -> None:
        await self._tasks.wait_idle()

    # -- subscriptions --------------------------------------------------------------------

    async def create(self, owner: str, url: str, events: list[str], secret: str,
                     enabled: bool) -> StudioWebhook:
        unknown = sorted(set(events) - set(EVENTS))
        if unknown or not events:
            raise InvalidRequest(f"events must be a non-empty list of: {', '.join(EVENTS)}")
        webhook_id = new_id("whk")
        webhook = StudioWebhook(
            id=webhook_id, owner=owner, url=check_url(url),
            events=" ".join(e for e in EVENTS if e in events),
            secret_sealed=self.box.seal(webhook_id, check_secret(secret)), enabled=enabled,
            created_at=datetime.now(UTC), failures=0,
        )
        async with self.db.session() as session:
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
                           "data": data}).encode()
        for row in wanted:
            secret = self.box.open(row.id, row.secret_sealed)
            if secret is None:
                log.warning("webhook %s: its secret cannot be opened; skipped", row.id)
                continue
            self._tasks.spawn(self._deliver(row.id, row.url, secret, event, event_id, body))

    async def _deliver(self, webhook_id: str, url: str, secret: str, event: str,
                       event_id: str, body: bytes) -> None:
        delay = self.settings.studio_webhook_backoff_initial
        attempts = 1 + self.settings.studio_webhook_retries
        outcome = "not attempted"
        for attempt in range(attempts):
            headers = {"Content-Type": "application/json", "User-Agent": "mediagate-webhooks/1",
                       "X-Mediagate-Event": event, "X-Mediagate-Delivery": event_id,
                       signing.HEADER: signing.signature_header(secret, body)}
            try:
                response = await self.http.post(url, content=body, headers=headers,
                                                timeout=TIMEOUT_SECONDS)
                if 200 <= response.status_code < 300:
                    await self._record(webhook_id, "delivered", success=True)
                    return
                outcome = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            log.info("webhook %s: %s delivery %d/%d failed (%s)", webhook_id, event,
                     attempt + 1, attempts, outcome)
            if attempt + 1 < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.studio_webhook_backoff_max)
        await self._record(webhook_id, f"failed: {outcome}", success=False)

    async def _record(self, webhook_id: str, status: str, *, success: bool) -> None:
        values: dict[str, Any] = {"last_status": status[:200]}
        values["failures"] = 0 if success else StudioWebhook.failures + 1
        async with self.db.session() as session:
            await session.execute(update(StudioWebhook)
                                  .where(StudioWebhook.id == webhook_id).values(**values))
