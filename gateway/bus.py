"""Publish/subscribe between the replicas of one deployment.

`LocalBus` delivers within this process (one replica, SQLite). `PostgresBus` delivers to
every replica sharing the PostgreSQL database, through LISTEN/NOTIFY: no new dependency.
Messages are small JSON objects; a channel is a short name such as `punch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.engine import make_url

log = logging.getLogger("mediagate.bus")

Message = dict[str, Any]
Handler = Callable[[Message], None]
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# NOTIFY payloads are limited to 8000 bytes by PostgreSQL.
MAX_PAYLOAD = 7900


class SignalBus(Protocol):
    origin: str

    async def publish(self, channel: str, message: Message) -> None: ...

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]: ...

    async def close(self) -> None: ...


def _check_channel(channel: str) -> None:
    if not _CHANNEL.fullmatch(channel):
        raise ValueError(f"invalid bus channel {channel!r}")


class LocalBus:
    """Delivers to the handlers of this process, in publish order."""

    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex
        self._handlers: dict[str, list[Handler]] = {}

    async def publish(self, channel: str, message: Message) -> None:
        _check_channel(channel)
        self._deliver(channel, {**message, "_origin": self.origin})

    def _deliver(self, channel: str, message: Message) -> None:
        for handler in list(self._handlers.get(channel, [])):
            try:
                handler(message)
            except Exception:
                log.exception("bus handler for %s failed", channel)

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        _check_channel(channel)
        self._handlers.setdefault(channel, []).append(handler)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._handlers[channel].remove(handler)

        return unsubscribe

    async def close(self) -> None:
        self._handlers.clear()


class PostgresBus(LocalBus):
    """LISTEN/NOTIFY on one dedicated asyncpg connection per replica.

    Every message is delivered to every replica, this one included (PostgreSQL echoes
    notifications to the sender's session too), so local and remote handlers see the same
    order. `_origin` tells a handler whether the message came from this replica.
    """

    def __init__(self, database_url: str) -> None:
        super().__init__()
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._connection: Any = None
        self._lock = asyncio.Lock()
        self._listening: set[str] = set()

    async def _connect(self) -> Any:
        import asyncpg

        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._dsn)
            self._listening.clear()
        return self._connection

    async def publish(self, channel: str, message: Message) -> None:
        _check_channel(channel)
        payload = json.dumps({**message, "_origin": self.origin}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError("bus message too large")
        async with self._lock:
            connection = await self._connect()
            await connection.execute("SELECT pg_notify($1, $2)", f"mg_{channel}", payload)

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        unsubscribe = await super().subscribe(channel, handler)
        async with self._lock:
            connection = await self._connect()
            if channel not in self._listening:
                await connection.add_listener(f"mg_{channel}", self._on_notify)
                self._listening.add(channel)
        return unsubscribe

    def _on_notify(self, _connection: Any, _pid: int, pg_channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("dropping a malformed bus message on %s", pg_channel)
            return
        self._deliver(pg_channel.removeprefix("mg_"), message)

    async def close(self) -> None:
        await super().close()
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()
        self._connection = None


def create_bus(database_url: str) -> SignalBus:
    """PostgreSQL deployments share one bus across replicas; SQLite stays in process."""
    backend = make_url(database_url).get_backend_name()
    return PostgresBus(database_url) if backend == "postgresql" else LocalBus()

