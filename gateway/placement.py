"""Media sessions are pinned to the replica holding their peer connections.

A replica claims each media session it creates (`live/room/<room>`, a WHEP viewer, a
Calls session) under its own `MEDIAGATE_REPLICA_URL`. A media-bound request for a
session held elsewhere is forwarded to the owner (`forward`), so a client may hit any
replica. Without a replica URL (one box) nothing is claimed and nothing is forwarded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from quart import Response, request
from sqlalchemy import delete, select

from gateway.db import Database
from gateway.models import MediaPlacement

log = logging.getLogger("mediagate.placement")

FORWARDED_HEADER = "X-Mediagate-Forwarded"
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
}


class OwnerUnreachable(Exception):
    """The replica that claimed a session does not answer: it is gone, and so is the session."""


class Placement:
    def __init__(self, db: Database, replica_url: str | None) -> None:
        self.db = db
        self.replica_url = replica_url.rstrip("/") if replica_url else None

    @property
    def enabled(self) -> bool:
        return self.replica_url is not None

    async def claim(self, key: str) -> None:
        if self.replica_url is None:
            return
        async with self.db.session() as session:
            row = await session.get(MediaPlacement, key)
            now = datetime.now(UTC)
            if row is None:
                session.add(MediaPlacement(key=key, replica_url=self.replica_url, updated_at=now))
            else:
                row.replica_url, row.updated_at = self.replica_url, now

    async def release(self, key: str) -> None:
        if self.replica_url is None:
            return
        async with self.db.session() as session:
            await session.execute(
                delete(MediaPlacement).where(
                    MediaPlacement.key == key, MediaPlacement.replica_url == self.replica_url
                )
            )

    async def owner(self, key: str) -> str | None:
        """The URL of another replica holding `key`, or None (here, or nowhere)."""
        if self.replica_url is None:
            return None
        async with self.db.session() as session:
            url = await session.scalar(
                select(MediaPlacement.replica_url).where(MediaPlacement.key == key)
            )
        return url if url and url != self.replica_url else None

    async def forget(self, key: str, replica_url: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                delete(MediaPlacement).where(
                    MediaPlacement.key == key, MediaPlacement.replica_url == replica_url
                )
            )

    async def reset(self) -> None:
        """At start-up: whatever this replica held before a restart is gone."""
        if self.replica_url is None:
            return
        async with self.db.session() as session:
            await session.execute(
                delete(MediaPlacement).where(MediaPlacement.replica_url == self.replica_url)
            )


def already_forwarded() -> bool:
    return request.headers.get(FORWARDED_HEADER) == "1"


async def forward_if_held_elsewhere(placement: Placement, key: str) -> Response | None:
    """The owner's answer when another live replica holds `key`; None to handle it here."""
    if not placement.enabled or already_forwarded():
        return None
    owner = await placement.owner(key)
    if owner is None:
        return None
    try:
        return await forward(placement, key, owner)
    except OwnerUnreachable:
        return None


async def forward(placement: Placement, key: str, owner_url: str) -> Response:
    """Replay the current request on the owning replica and relay its answer."""
    body = await request.get_data()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers[FORWARDED_HEADER] = "1"
    headers.setdefault("X-Forwarded-For", request.remote_addr or "")
    url = owner_url + request.full_path.rstrip("?")
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            upstream = await client.request(request.method, url, content=body, headers=headers)
    except httpx.TransportError as exc:
        log.warning("replica %s holding %s is unreachable: %s", owner_url, key, exc)
        await placement.forget(key, owner_url)
        raise OwnerUnreachable(key) from exc
    relayed = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
    return Response(upstream.content, status=upstream.status_code, headers=relayed)
