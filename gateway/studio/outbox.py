"""The webhook outbox: deliveries live in the database until they are taken or given up on.

`emit` (webhooks.py) inserts one row per subscribed webhook; every replica runs a worker
that claims due rows (an UPDATE that only succeeds while the row is unclaimed or its lease
ran out; `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas do not queue on each other),
POSTs them through the egress guard and then deletes the row or schedules the next attempt
after 1 s, 2 s, 4 s ... (STUDIO_WEBHOOK_RETRIES, STUDIO_WEBHOOK_BACKOFF_INITIAL / _MAX).
A restart, or a replica that dies holding a claim, loses nothing: the row is claimed again
(at the latest when the lease ends) and sent with the same delivery id. Delivery is at
least once; receivers de-duplicate on `X-Mediagate-Delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.db import Database
from gateway.egress import DELIVERY_FAILED
from gateway.settings import Settings
from gateway.studio import signing
from gateway.studio.ids import new_id
from gateway.studio.models_part2 import StudioWebhook, StudioWebhookDelivery
from gateway.studio.sealbox import SealBox
from gateway.tasks import BackgroundTasks

log = logging.getLogger("mediagate.studio.webhooks")

Delivery = StudioWebhookDelivery
TIMEOUT_SECONDS = 10.0
LEASE = timedelta(seconds=60)
"""How long a claim holds: longer than one attempt (TIMEOUT_SECONDS) by a wide margin."""
POLL_SECONDS = 1.0
"""The longest a worker sleeps: rows other replicas queued or left behind show up this fast."""
MAX_IN_FLIGHT = 50


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now)


@dataclass
class WebhookOutbox:
    settings: Settings
    db: Database
    box: SealBox
    http: httpx.AsyncClient
    worker_id: str = field(default_factory=lambda: new_id("wkr"))
    _tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, abandon attempts in flight and hand their rows back at once."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await self._tasks.cancel_all()
        try:
            async with self.db.session() as session:
                await session.execute(
                    update(Delivery).where(Delivery.claimed_by == self.worker_id)
                    .values(claimed_by=None, claimed_until=None)
                    .execution_options(synchronize_session=False))
        except Exception:  # the lease hands them back anyway
            log.exception("could not release claimed webhook deliveries")

    async def wait_idle(self) -> None:
        """Until the outbox is empty and nothing is in flight here (tests, draining)."""
        while True:
            await self._tasks.wait_idle()
            async with self.db.session() as session:
                pending = (await session.execute(
                    select(func.count()).select_from(Delivery))).scalar_one()
            if not pending and not self._tasks:
                return
            self.wake()
            await asyncio.sleep(0.02)

    # -- the worker -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._round()
            except Exception:  # a database hiccup must not end the worker
                log.exception("webhook outbox round failed")
                delay = POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _round(self) -> float:
        """Claim and start what is due; return how long to sleep before the next round."""
        room = MAX_IN_FLIGHT - len(self._tasks)
        if room <= 0:
            return POLL_SECONDS  # each finished attempt wakes the worker
        for delivery_id in await self.claim(room):
            self._tasks.spawn(self._attempt(delivery_id))
        now = datetime.now(UTC)
        async with self.db.session() as session:
            due = (await session.execute(select(func.min(Delivery.next_attempt_at))
                                         .where(_claimable(now)))).scalar_one_or_none()
        if due is None:
            return POLL_SECONDS
        return min(max((_aware(due) - now).total_seconds(), 0.0), POLL_SECONDS)

    async def claim(self, limit: int) -> list[str]:
        """Claim up to `limit` due deliveries for this worker; each goes to one worker only."""
        now = datetime.now(UTC)
        due = (select(Delivery.id)
               .where(Delivery.next_attempt_at <= now, _claimable(now))
               .order_by(Delivery.next_attempt_at).limit(limit)
               .with_for_update(skip_locked=True))  # PostgreSQL; SQLite serialises writers
        claim = (update(Delivery)
                 .where(Delivery.id.in_(due.scalar_subquery()), _claimable(now))
                 .values(claimed_by=self.worker_id, claimed_until=now + LEASE)
                 .returning(Delivery.id)
                 .execution_options(synchronize_session=False))
        async with self.db.session() as session:
            return list((await session.execute(claim)).scalars())

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, delivery_id: str) -> None:
        try:
            await self._attempt_once(delivery_id)
        finally:
            self.wake()

    async def _attempt_once(self, delivery_id: str) -> None:
        async with self.db.session() as session:
            row = await session.get(Delivery, delivery_id)
            webhook = await session.get(StudioWebhook, row.webhook_id) if row else None
        if row is None or row.claimed_by != self.worker_id:
            return
        if webhook is None or not webhook.enabled:
            await self._finish(row, None)
            return
        secret = self.box.open(webhook.id, webhook.secret_sealed)
        if secret is None:
            log.warning("webhook %s: its secret cannot be opened; delivery dropped", webhook.id)
            await self._finish(row, False)
            return
        body = row.body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "mediagate-webhooks/1",
                   "X-Mediagate-Event": row.event, "X-Mediagate-Delivery": row.event_id,
                   signing.HEADER: signing.signature_header(secret, body)}
        try:
            response = await self.http.post(webhook.url, content=body, headers=headers,
                                            timeout=TIMEOUT_SECONDS)
            outcome = f"HTTP {response.status_code}"
            taken = 200 <= response.status_code < 300
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            outcome, taken = type(exc).__name__, False
        attempts = 1 + self.settings.studio_webhook_retries
        if taken or row.attempts + 1 >= attempts:
            await self._finish(row, taken)
            return
        log.info("webhook %s: %s delivery %d/%d failed (%s)", webhook.id, row.event,
                 row.attempts + 1, attempts, outcome)
        delay = min(self.settings.studio_webhook_backoff_initial * 2 ** row.attempts,
                    self.settings.studio_webhook_backoff_max)
        async with self.db.session() as session:
            await session.execute(
                update(Delivery).where(Delivery.id == row.id,
                                       Delivery.claimed_by == self.worker_id)
                .values(attempts=row.attempts + 1, claimed_by=None, claimed_until=None,
                        next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay))
                .execution_options(synchronize_session=False))

    async def _finish(self, row: Delivery, taken: bool | None) -> None:
        """Remove the row; record the outcome on the webhook (None: nobody to tell)."""
        async with self.db.session() as session:
            removed = await session.execute(
                delete(Delivery).where(Delivery.id == row.id,
                                       Delivery.claimed_by == self.worker_id)
                .execution_options(synchronize_session=False))
            if not removed.rowcount or taken is None:  # type: ignore[attr-defined]
                return
            values: dict[str, Any] = {
                "last_status": "delivered" if taken else DELIVERY_FAILED,
                "failures": 0 if taken else StudioWebhook.failures + 1,
            }
            await session.execute(update(StudioWebhook)
                                  .where(StudioWebhook.id == row.webhook_id).values(**values))
        if not taken:
            log.info("webhook %s: %s delivery %s given up", row.webhook_id, row.event,
                     row.event_id)
