"""Studio lifecycle events for webhooks: stream.live / stream.offline and status changes.

The part 1 service keeps live state where it runs (broadcasts, WHIP ingest), so this
watcher samples that state once a second in the same process and emits what changed:
only the replica that runs a broadcast or holds a source's ingest observes it, so each
change is announced once. Sources and destinations are compared with the statuses their
GET routes show (`source_status`, `destination_state`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from gateway.studio.models import Studio, StudioDestination, StudioSource
from gateway.studio.service import WEBRTC_TYPES, StudioService
from gateway.studio.webhooks import WebhookService

log = logging.getLogger("mediagate.studio.events")


@dataclass
class _Seen:
    live: bool = False
    sources: dict[str, str] = field(default_factory=dict)
    destinations: dict[str, str] = field(default_factory=dict)


def _idle_source(source: StudioSource) -> str:
    return "offline" if source.type in WEBRTC_TYPES else "idle"


@dataclass
class StudioEventWatcher:
    studios: StudioService
    webhooks: WebhookService
    interval: float = 1.0
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # one bad sample must not end the watcher
                log.exception("studio event sampling failed")
            await asyncio.sleep(self.interval)

    def _active_studios(self) -> set[str]:
        active = set(self.studios.broadcasts)
        for track in self.studios.media.list_tracks("studio/"):
            parts = track.track_id.split("/")
            if len(parts) == 4:
                active.add(parts[1])
        return active

    async def sample(self) -> None:
        """Compare the live state of every studio active here with the last sample."""
        watched = self._active_studios() | set(self._seen)
        if not watched:
            return
        async with self.studios.db.session() as session:
            rows = {s.id: s for s in (await session.execute(
                select(Studio).where(Studio.id.in_(watched)))).scalars()}
            sources = list((await session.execute(
                select(StudioSource).where(StudioSource.studio_id.in_(watched)))).scalars())
            destinations = list((await session.execute(
                select(StudioDestination).where(
                    StudioDestination.studio_id.in_(watched)))).scalars())
        active = self._active_studios()
        for studio_id in watched:
            studio = rows.get(studio_id)
            if studio is None:
                self._seen.pop(studio_id, None)
                continue
            seen = self._seen.setdefault(studio_id, _Seen())
            await self._compare(studio, seen,
                                [s for s in sources if s.studio_id == studio_id],
                                [d for d in destinations if d.studio_id == studio_id])
            if studio_id not in active and not seen.live:
                self._seen.pop(studio_id, None)

    async def _compare(self, studio: Studio, seen: _Seen, sources: list[StudioSource],
                       destinations: list[StudioDestination]) -> None:
        emit = self.webhooks.emit
        base: dict[str, Any] = {"studioId": studio.id}
        live = studio.id in self.studios.broadcasts
        if live and not seen.live:
            broadcast = self.studios.broadcasts[studio.id]
            await emit(studio.owner, "stream.live", {**base, "encoderStreamId":
                                                     broadcast.stream_id})
        for source in sources:
            status = self.studios.source_status(source)
            previous = seen.sources.get(source.id, _idle_source(source))
            if status != previous:
                await emit(studio.owner, "source.status_changed", {
                    **base, "sourceId": source.id, "status": status,
                    "previousStatus": previous})
            seen.sources[source.id] = status
        for destination in destinations:
            state = self.studios.destination_state(destination)
            previous = seen.destinations.get(destination.id, "offline")
            if state.status != previous:
                data = {**base, "destinationId": destination.id, "status": state.status,
                        "previousStatus": previous}
                if state.reason:
                    data["statusReason"] = state.reason
                await emit(studio.owner, "destination.status_changed", data)
            seen.destinations[destination.id] = state.status
        if seen.live and not live:
            await emit(studio.owner, "stream.offline", base)
        seen.live = live
