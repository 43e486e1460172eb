"""Studio domain logic: studios, sources, destinations, WHIP ingest and go-live.

No Quart here: routes parse and authorize, this module decides. Every read and write is
scoped to the key's owner; another owner's resources are simply not found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, update

from gateway.db import Database
from gateway.egress import RTMP_SCHEMES, SRT_SCHEMES, EgressPolicy, EgressRefused
from gateway.keys import InstanceSecret, secrets_equal
from gateway.media_setup import WHIP_SDP_LIMITS
from gateway.settings import Settings
from gateway.studio.ids import new_id
from gateway.studio.models import Studio, StudioDestination, StudioSource
from gateway.studio.sealing import StreamKeySealer
from media import MediaCore, MediaEvent, NegotiationError, TrackEnded, TrackStarted
from media.restream import OutputPlan, Resolver, Restreamer, RestreamPlan, SourcePlan

log = logging.getLogger("mediagate.studio")

WEBRTC_TYPES = frozenset({"webrtc-input", "webcam"})
PULL_SCHEMES = {"rtmp": RTMP_SCHEMES, "srt": SRT_SCHEMES}
SOURCE_TYPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
RESOURCE_ID = re.compile(r"^[a-z]{3}_[0-9a-f]{26}$")

Row = TypeVar("Row", Studio, StudioSource, StudioDestination)


class NotFound(Exception):
    pass


class InvalidRequest(Exception):
    pass


class Conflict(Exception):
    """The request is well-formed but the resource's state does not allow it (e.g. going
    live with no active source)."""


class QuotaExceeded(Exception):
    """The owner (or studio) already has as many of something as the operator allows."""


def check_quota(count: int, limit: int, what: str, setting: str) -> None:
    if count >= limit:
        raise QuotaExceeded(f"quota exceeded: at most {limit} {what} ({setting})")


@dataclass
class KeyedLocks:
    """One asyncio lock per key (a studio, an owner's quota): count-then-insert and
    go-live/offline do not interleave within this process."""

    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def __call__(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())


async def check_egress(policy: EgressPolicy, url: str, schemes: dict[str, int],
                       field_name: str) -> None:
    """Create/update time: the URL is of one of `schemes` and its host resolves only to
    addresses clients may make the gateway connect to (gateway/egress.py)."""
    try:
        await policy.check_url(url, schemes)
    except EgressRefused as exc:
        raise InvalidRequest(f"{field_name}: {exc}") from None


def pinning(policy: EgressPolicy, schemes: dict[str, int]) -> Resolver:
    """Connect time, in the media core's threads: the URL checked again and its host
    replaced by the address checked, so FFmpeg connects there and never looks it up again."""
    return lambda url: policy.pin_url(url, schemes)[0]


def write_enabled(settings: Settings) -> bool:
    """Mutating routes answer 503 `write_disabled` while PUBLIC_API_WRITE_ENABLED is off."""
    return settings.public_api_write_enabled


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_key: str | None


@dataclass
class DestinationState:
    status: str
    reason: str | None = None


@dataclass
class StreamStatus:
    live: bool
    live_started_at: datetime | None = None
    broadcast_started_at: datetime | None = None
    encoder_stream_id: str | None = None
    mode: str = "cloud"


@dataclass
class WhipSession:
    id: str
    studio_id: str
    source_id: str
    peer_id: str


@dataclass
class StudioService:
    settings: Settings
    db: Database
    secret: InstanceSecret
    media: MediaCore
    broadcasts: dict[str, Restreamer] = field(default_factory=dict)
    whip_sessions: dict[str, WhipSession] = field(default_factory=dict)
    egress: EgressPolicy | None = None
    """The app's egress guard (`GatewayState.egress`); built from the settings if not given."""
    _lock: KeyedLocks = field(default_factory=KeyedLocks)
    _quota_lock: KeyedLocks = field(default_factory=KeyedLocks)
    _remove_listener: Any = None
    bound_output: Callable[[str, str], Awaitable[tuple[str, str] | None]] | None = None
    """(studio id, connectionId) -> the linked connection's (RTMP url, stream key), None
    when it has none; raises InvalidRequest for a connection the studio's owner lacks.
    Set by part 2 (gateway.studio.connections)."""
    media_file: Callable[[str, str], Awaitable[Path]] | None = None
    """(owner, asset id or objectKey) -> the file of that owner's READY media-library asset;
    raises InvalidRequest for anything else. Set by part 2 (gateway.studio.library)."""

    def __post_init__(self) -> None:
        self.sealer = StreamKeySealer(self.secret)
        self.policy = self.egress or EgressPolicy.from_cidrs(self.settings.egress_allow)
        self._pin_rtmp = pinning(self.policy, RTMP_SCHEMES)
        self._ingest_key = self.secret.derive("studio-ingest-token")
        # This process among the replicas: the owner of the broadcasts it runs.
        self.process_id = secrets.token_hex(16)
        self._keeper: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._remove_listener = self.media.add_listener(self._on_media_event)
        self._keeper = asyncio.get_running_loop().create_task(self._keep_broadcasts())

    async def stop(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        for studio_id in list(self.broadcasts):
            await self._stop_broadcast(studio_id)
        for whip in list(self.whip_sessions.values()):
            await self._close_whip(whip)

    # -- helpers --------------------------------------------------------------------------

    async def _owned_studio(self, session: Any, owner: str, studio_id: str) -> Studio:
        if not RESOURCE_ID.fullmatch(studio_id):
            raise NotFound("studio not found")
        studio = await session.get(Studio, studio_id)
        if studio is None or studio.owner != owner:
            raise NotFound("studio not found")
        return studio

    async def _child(self, session: Any, model: type[Row], studio_id: str, child_id: str,
                     what: str) -> Row:
        if not RESOURCE_ID.fullmatch(child_id):
            raise NotFound(f"{what} not found")
        row = await session.get(model, child_id)
        if row is None or row.studio_id != studio_id:  # type: ignore[union-attr]
            raise NotFound(f"{what} not found")
        return row

    @staticmethod
    async def _page(session: Any, query: Any, id_column: Any, after: str | None,
                    limit: int) -> Page[Any]:
        if after is not None:
            query = query.where(id_column > after)
        rows = list((await session.execute(query.order_by(id_column).limit(limit + 1))).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    # -- studios --------------------------------------------------------------------------

    async def list_studios(self, owner: str, after: str | None, limit: int) -> Page[Studio]:
        async with self.db.session() as session:
            return await self._page(
                session, select(Studio).where(Studio.owner == owner), Studio.id, after, limit
            )

    async def create_studio(self, owner: str, name: str, description: str | None) -> Studio:
        studio = Studio(
            id=new_id("std"), owner=owner, name=name, description=description,
            auto_go_live=False, auto_go_offline_on_drop=False, created_at=datetime.now(UTC),
            live=False,
        )
        async with self._quota_lock(f"studios/{owner}"), self.db.session() as session:
            check_quota(await _count(session, Studio.id, Studio.owner == owner),
                        self.settings.studio_max_studios, "studios per owner",
                        "STUDIO_MAX_STUDIOS")
            session.add(studio)
        return studio

    async def get_studio(self, owner: str, studio_id: str) -> Studio:
        async with self.db.session() as session:
            return await self._owned_studio(session, owner, studio_id)

    async def update_studio(self, owner: str, studio_id: str, changes: dict[str, Any]) -> Studio:
        async with self.db.session() as session:
            studio = await self._owned_studio(session, owner, studio_id)
            for name, value in changes.items():
                setattr(studio, name, value)
            return studio

    # -- sources --------------------------------------------------------------------------

    async def list_sources(self, owner: str, studio_id: str, after: str | None,
                           limit: int) -> Page[StudioSource]:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            query = select(StudioSource).where(StudioSource.studio_id == studio_id)
            return await self._page(session, query, StudioSource.id, after, limit)

    async def _check_source_url(self, owner: str, source_type: str,
                                url: str | None) -> str | None:
        if source_type in WEBRTC_TYPES:
            return None
        if source_type in PULL_SCHEMES:
            if not url:
                raise InvalidRequest(f"a {source_type} source needs a url")
            await check_egress(self.policy, url, PULL_SCHEMES[source_type], "url")
            return url
        if source_type == "media":
            if not url:
                raise InvalidRequest("a media source needs a url: the id or objectKey of one "
                                     "of your READY media-library assets")
            await self.media_source_file(owner, url)
            return url
        return url

    async def media_source_file(self, owner: str, url: str) -> Path:
        """The file a `media` source plays: one of the owner's READY library assets, named
        by its id or objectKey. The url never becomes a path itself."""
        if self.media_file is None:
            raise InvalidRequest("media sources need the media library")
        return await self.media_file(owner, url)

    async def create_source(self, owner: str, studio_id: str, name: str, source_type: str,
                            url: str | None, active: bool | None) -> StudioSource:
        if not SOURCE_TYPE.fullmatch(source_type):
            raise InvalidRequest("type must be a lowercase word such as webrtc-input or media")
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
        url = await self._check_source_url(owner, source_type, url)
        async with self._quota_lock(f"sources/{studio_id}"), self.db.session() as session:
            existing = await _count(session, StudioSource.id, StudioSource.studio_id == studio_id)
            check_quota(existing, self.settings.studio_max_sources_per_studio,
                        "sources per studio", "STUDIO_MAX_SOURCES_PER_STUDIO")
            # The first source of a studio is its active one unless told otherwise.
            is_active = active if active is not None else existing == 0
            if is_active:
                await self._deactivate_others(session, studio_id, None)
            source = StudioSource(
                id=new_id("src"), studio_id=studio_id, name=name, type=source_type, url=url,
                active=is_active, created_at=datetime.now(UTC),
            )
            session.add(source)
        return source

    @staticmethod
    async def _deactivate_others(session: Any, studio_id: str, keep: str | None) -> None:
        query = update(StudioSource).where(StudioSource.studio_id == studio_id)
        if keep is not None:
            query = query.where(StudioSource.id != keep)
        await session.execute(query.values(active=False))

    async def update_source(self, owner: str, studio_id: str, source_id: str,
                            changes: dict[str, Any]) -> StudioSource:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            source = await self._child(session, StudioSource, studio_id, source_id, "source")
            if "url" in changes:
                changes["url"] = await self._check_source_url(owner, source.type,
                                                              changes["url"])
            if changes.get("active"):
                await self._deactivate_others(session, studio_id, source.id)
            for name, value in changes.items():
                setattr(source, name, value)
        broadcast = self.broadcasts.get(studio_id)
        if broadcast is not None and broadcast.plan.source.source_id == source_id and (
                changes.get("active") is False or "url" in changes):
            await self._restart_broadcast(studio_id)  # on air with what is active now
        elif broadcast is not None and changes.get("active"):
            await self._restart_broadcast(studio_id)  # switch the broadcast to this source
        return source

    async def _restart_broadcast(self, studio_id: str) -> None:
        """Go on air again from the studio's active source (a new encoder stream); the
        destinations reconnect within a moment. Without an active source it goes offline."""
        async with self._lock(studio_id):
            await self._stop_broadcast(studio_id, local_only=True)
            try:
                await self._start_broadcast(studio_id)
            except (Conflict, InvalidRequest) as exc:
                log.info("studio %s: offline after a source change: %s", studio_id, exc)
                await self._stop_broadcast(studio_id)

    async def delete_source(self, owner: str, studio_id: str, source_id: str) -> None:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            source = await self._child(session, StudioSource, studio_id, source_id, "source")
            await session.delete(source)
        for whip in [w for w in self.whip_sessions.values() if w.source_id == source_id]:
            await self._close_whip(whip)
        broadcast = self.broadcasts.get(studio_id)
        if broadcast is not None and broadcast.plan.source.source_id == source_id:
            async with self._lock(studio_id):
                await self._stop_broadcast(studio_id)  # its source is gone

    def source_status(self, source: StudioSource) -> str:
        broadcast = self.broadcasts.get(source.studio_id)
        if source.type in WEBRTC_TYPES:
            tracks = self.media.list_tracks(ingest_prefix(source.studio_id, source.id) + "/")
            if any(self.media.track_started(t.track_id) for t in tracks):
                return "live"
            return "connecting" if tracks else "offline"
        if broadcast is not None and broadcast.plan.source.source_id == source.id:
            return "error" if broadcast.source_error else "live"
        return "idle"

    def ingest_token(self, studio_id: str, source_id: str) -> str:
        mac = hmac.new(self._ingest_key, f"{studio_id}/{source_id}".encode(), hashlib.sha256)
        return "sit_" + mac.hexdigest()[:40]

    def check_ingest_token(self, studio_id: str, source_id: str, token: str) -> bool:
        return secrets_equal(token, self.ingest_token(studio_id, source_id))

    # -- destinations ---------------------------------------------------------------------

    async def list_destinations(self, owner: str, studio_id: str, after: str | None,
                                limit: int) -> Page[StudioDestination]:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            query = select(StudioDestination).where(StudioDestination.studio_id == studio_id)
            return await self._page(session, query, StudioDestination.id, after, limit)

    async def _check_destination(self, studio_id: str, fields: dict[str, Any]) -> None:
        if fields.get("rtmp_url") is not None:
            await check_egress(self.policy, fields["rtmp_url"], RTMP_SCHEMES, "rtmpUrl")
        if fields.get("connection_id") and self.bound_output is not None:
            bound = await self.bound_output(studio_id, fields["connection_id"])
            if bound is not None:
                await check_egress(self.policy, bound[0], RTMP_SCHEMES, "connectionId")

    async def create_destination(self, owner: str, studio_id: str, fields: dict[str, Any],
                                 stream_key: str | None) -> StudioDestination:
        if fields.get("connection_id") and (fields.get("rtmp_url") or stream_key):
            raise InvalidRequest("connectionId is mutually exclusive with rtmpUrl and streamKey")
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
        await self._check_destination(studio_id, fields)
        destination = StudioDestination(
            id=new_id("dst"), studio_id=studio_id, created_at=datetime.now(UTC),
            enabled=True, vertical=False,
        )
        for name, value in fields.items():
            if value is not None:
                setattr(destination, name, value)
        if stream_key:
            destination.stream_key_sealed = self.sealer.seal(destination.id, stream_key)
        async with self._quota_lock(f"destinations/{studio_id}"), \
                self.db.session() as session:
            check_quota(await _count(session, StudioDestination.id,
                                     StudioDestination.studio_id == studio_id),
                        self.settings.studio_max_destinations_per_studio,
                        "destinations per studio", "STUDIO_MAX_DESTINATIONS_PER_STUDIO")
            session.add(destination)
        await self._sync_output(destination, stream_key)
        return destination

    async def _sync_output(self, destination: StudioDestination, stream_key: str | None) -> None:
        """While live, a new or changed destination gets its output (re)started at once."""
        broadcast = self.broadcasts.get(destination.studio_id)
        if broadcast is None:
            return
        url = destination.rtmp_url
        if not url and destination.connection_id and self.bound_output is not None:
            with contextlib.suppress(InvalidRequest):  # its connection was unlinked
                url, stream_key = await self.bound_output(
                    destination.studio_id, destination.connection_id) or (None, None)
        if not destination.enabled or not url:
            await broadcast.remove_output(destination.id)
            return
        await broadcast.add_output(OutputPlan(destination.id, url, stream_key, self._pin_rtmp))

    async def update_destination(self, owner: str, studio_id: str, destination_id: str,
                                 fields: dict[str, Any],
                                 stream_key: str | None) -> StudioDestination:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
        await self._check_destination(studio_id, fields)
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            destination = await self._child(
                session, StudioDestination, studio_id, destination_id, "destination"
            )
            for name, value in fields.items():
                setattr(destination, name, value)
            if stream_key is not None:
                destination.stream_key_sealed = (
                    self.sealer.seal(destination.id, stream_key) if stream_key else None
                )
        if fields.keys() & {"enabled", "rtmp_url"} or stream_key is not None:
            key = (self.sealer.open(destination.id, destination.stream_key_sealed)
                   if destination.stream_key_sealed else None)
            await self._sync_output(destination, key)
        return destination

    async def delete_destination(self, owner: str, studio_id: str, destination_id: str) -> None:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            destination = await self._child(
                session, StudioDestination, studio_id, destination_id, "destination"
            )
            await session.delete(destination)
        broadcast = self.broadcasts.get(studio_id)
        if broadcast is not None:
            await broadcast.remove_output(destination_id)

    def destination_state(self, destination: StudioDestination) -> DestinationState:
        broadcast = self.broadcasts.get(destination.studio_id)
        if broadcast is not None:
            state = broadcast.output_status(destination.id)
            if state is not None:
                return DestinationState(*state)
        return DestinationState("offline")

    # -- WHIP ingest ----------------------------------------------------------------------

    async def _ingest_source(self, studio_id: str, source_id: str) -> StudioSource:
        if not RESOURCE_ID.fullmatch(source_id):
            raise NotFound("source not found")
        async with self.db.session() as session:
            source = await session.get(StudioSource, source_id)
        if source is None or source.studio_id != studio_id:
            raise NotFound("source not found")
        if source.type not in WEBRTC_TYPES:
            raise InvalidRequest(f"a {source.type} source has no WHIP ingest")
        return source

    async def check_source_owner(self, owner: str, studio_id: str, source_id: str) -> None:
        async with self.db.session() as session:
            await self._owned_studio(session, owner, studio_id)
            await self._child(session, StudioSource, studio_id, source_id, "source")

    async def whip_publish(self, studio_id: str, source_id: str, offer: str) -> tuple[str, str]:
        """Accept a WHIP offer for a source; returns (session id, answer SDP).

        A new publisher replaces the previous one of the same source.
        """
        await self._ingest_source(studio_id, source_id)
        if "m=audio" not in offer and "m=video" not in offer:
            raise InvalidRequest("the offer publishes no audio or video")
        for old in [w for w in self.whip_sessions.values() if w.source_id == source_id]:
            await self._close_whip(old)
        peer = await self.media.create_peer(f"studio-{source_id}-{secrets.token_hex(4)}")
        try:
            answer = await peer.accept_offer(
                offer, publish_prefix=ingest_prefix(studio_id, source_id), limits=WHIP_SDP_LIMITS
            )
        except NegotiationError as exc:
            await peer.close("negotiation failed")
            raise InvalidRequest(f"invalid SDP offer: {exc}") from None
        except Exception:
            await peer.close("negotiation failed")
            raise
        if not self.media.list_tracks(ingest_prefix(studio_id, source_id) + "/"):
            await peer.close("nothing published")
            raise InvalidRequest("the offer publishes no audio or video (sendonly/sendrecv)")
        whip = WhipSession(secrets.token_hex(12), studio_id, source_id, peer.id)
        self.whip_sessions[whip.id] = whip
        return whip.id, answer

    async def whip_delete(self, studio_id: str, source_id: str, session_id: str) -> None:
        whip = self.whip_sessions.get(session_id)
        if whip is None or whip.studio_id != studio_id or whip.source_id != source_id:
            raise NotFound("WHIP session not found")
        await self._close_whip(whip)

    async def _close_whip(self, whip: WhipSession) -> None:
        self.whip_sessions.pop(whip.id, None)
        peer = self.media.get_peer(whip.peer_id)
        if peer is not None:
            await peer.close("publisher left")

    # -- go-live --------------------------------------------------------------------------

    async def go_live(self, owner: str, studio_id: str) -> tuple[str, list[str]]:
        async with self._lock(studio_id):
            async with self.db.session() as session:
                await self._owned_studio(session, owner, studio_id)
            running = self.broadcasts.get(studio_id)
            if running is not None:
                return running.stream_id, running.destination_ids
            elsewhere = await self._live_elsewhere(studio_id)
            if elsewhere is not None:
                return elsewhere
            return await self._start_broadcast(studio_id)

    async def _live_elsewhere(self, studio_id: str) -> tuple[str, list[str]] | None:
        """The broadcast another (live) replica runs for this studio, if any."""
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            if (studio is None or not studio.live or studio.live_instance == self.process_id
                    or not _fresh(studio.live_heartbeat_at)):
                return None
            ids = list((await session.execute(
                select(StudioDestination.id).where(
                    StudioDestination.studio_id == studio_id,
                    StudioDestination.enabled.is_(True),
                    StudioDestination.rtmp_url.is_not(None),
                ).order_by(StudioDestination.id)
            )).scalars())
            return studio.encoder_stream_id or "", ids

    async def _start_broadcast(self, studio_id: str) -> tuple[str, list[str]]:
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            source = (await session.execute(
                select(StudioSource).where(
                    StudioSource.studio_id == studio_id, StudioSource.active.is_(True)
                ).order_by(StudioSource.id).limit(1)
            )).scalar_one_or_none()
            destinations = list((await session.execute(
                select(StudioDestination).where(
                    StudioDestination.studio_id == studio_id,
                    StudioDestination.enabled.is_(True),
                ).order_by(StudioDestination.id)
            )).scalars())
        if studio is None or source is None:
            raise Conflict("the studio has no active source")
        source_plan = await self._source_plan(studio.owner, source)
        outputs = []
        for destination in destinations:
            url = destination.rtmp_url
            key = (self.sealer.open(destination.id, destination.stream_key_sealed)
                   if destination.stream_key_sealed else None)
            if not url and destination.connection_id and self.bound_output is not None:
                with contextlib.suppress(InvalidRequest):  # its connection was unlinked
                    url, key = await self.bound_output(
                        studio_id, destination.connection_id) or (None, None)
            if not url:
                continue
            outputs.append(OutputPlan(destination.id, url, key, self._pin_rtmp))
        if not outputs:
            raise Conflict("the studio has no enabled destination with an rtmpUrl")
        plan = RestreamPlan(
            studio_id=studio_id,
            stream_id=new_id("enc"),
            source=source_plan,
            outputs=outputs,
            backoff_initial=self.settings.studio_restream_backoff_initial,
            backoff_max=self.settings.studio_restream_backoff_max,
            connect_timeout=self.settings.studio_restream_connect_timeout,
        )
        stream_id = plan.stream_id
        broadcast = Restreamer(
            plan, self.media, on_first_live=lambda: self._first_live(studio_id, stream_id)
        )
        await broadcast.start()
        self.broadcasts[studio_id] = broadcast
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            if studio is not None:
                studio.live = True
                studio.live_instance = self.process_id
                studio.live_heartbeat_at = datetime.now(UTC)
                studio.encoder_stream_id = plan.stream_id
                studio.live_started_at = datetime.now(UTC)
                studio.broadcast_started_at = None
        log.info("studio %s live: encoder stream %s to %d destination(s)",
                 studio_id, plan.stream_id, len(outputs))
        return plan.stream_id, broadcast.destination_ids

    async def _source_plan(self, owner: str, source: StudioSource) -> SourcePlan:
        if source.type in WEBRTC_TYPES:
            return SourcePlan(source.id, "tracks", ingest_prefix(source.studio_id, source.id))
        if source.type == "media":  # resolved again: the asset may be gone since
            try:
                path = await self.media_source_file(owner, source.url or "")
            except InvalidRequest as exc:
                raise Conflict(f"the active media source cannot play: {exc}") from None
            return SourcePlan(source.id, "file", str(path), loop=True)
        if source.type in PULL_SCHEMES and source.url:
            return SourcePlan(source.id, "pull", source.url,
                              resolve=pinning(self.policy, PULL_SCHEMES[source.type]))
        raise Conflict(f"cannot go live from a {source.type} source")

    async def _first_live(self, studio_id: str, stream_id: str) -> None:
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            if studio is not None and studio.encoder_stream_id == stream_id:
                studio.broadcast_started_at = studio.broadcast_started_at or datetime.now(UTC)

    async def go_offline(self, owner: str, studio_id: str) -> None:
        async with self._lock(studio_id):
            async with self.db.session() as session:
                await self._owned_studio(session, owner, studio_id)
            await self._stop_broadcast(studio_id)

    async def _stop_broadcast(self, studio_id: str, *, local_only: bool = False) -> None:
        broadcast = self.broadcasts.pop(studio_id, None)
        if broadcast is not None:
            await broadcast.stop()
            log.info("studio %s offline", studio_id)
        if local_only:
            return
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            if studio is not None and studio.live:
                studio.live = False
                studio.live_instance = None
                studio.live_heartbeat_at = None
                studio.encoder_stream_id = None
                studio.live_started_at = None
                studio.broadcast_started_at = None

    async def stream_status(self, owner: str, studio_id: str) -> StreamStatus:
        async with self.db.session() as session:
            studio = await self._owned_studio(session, owner, studio_id)
        if not studio.live or (studio.live_instance != self.process_id
                               and not _fresh(studio.live_heartbeat_at)):
            return StreamStatus(live=False)  # never started, or its replica is gone
        return StreamStatus(
            live=True,
            live_started_at=studio.live_started_at,
            broadcast_started_at=studio.broadcast_started_at,
            encoder_stream_id=studio.encoder_stream_id,
        )

    # -- autoGoLive / autoGoOfflineOnDrop --------------------------------------------------

    async def _on_media_event(self, event: MediaEvent) -> None:
        if not isinstance(event, TrackStarted | TrackEnded):
            return
        parts = event.track.track_id.split("/")
        if len(parts) != 4 or parts[0] != "studio":
            return
        studio_id, source_id = parts[1], parts[2]
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            source = await session.get(StudioSource, source_id)
        if studio is None or source is None or not source.active:
            return
        async with self._lock(studio_id):
            running = self.broadcasts.get(studio_id)
            if isinstance(event, TrackStarted):
                if running is not None:
                    running.track_started(event.track)
                elif studio.auto_go_live and await self._live_elsewhere(studio_id) is None:
                    log.info("studio %s: active source started publishing, going live", studio_id)
                    try:
                        await self._start_broadcast(studio_id)
                    except (Conflict, InvalidRequest) as exc:
                        log.warning("studio %s: autoGoLive failed: %s", studio_id, exc)
            elif running is not None and studio.auto_go_offline_on_drop:
                log.info("studio %s: active source dropped, going offline", studio_id)
                await self._stop_broadcast(studio_id)


    async def _keep_broadcasts(self) -> None:
        """Heartbeat the broadcasts this process runs; stop those another replica ended."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._heartbeat()
            except Exception:  # the database is briefly unreachable: try again next beat
                log.exception("studio heartbeat failed")

    async def _heartbeat(self) -> None:
        running = list(self.broadcasts)
        if not running:
            return
        ended: list[str] = []
        async with self.db.session() as session:
            for studio_id in running:
                studio = await session.get(Studio, studio_id)
                broadcast = self.broadcasts.get(studio_id)
                if broadcast is None:
                    continue
                if (studio is None or not studio.live or studio.live_instance != self.process_id
                        or studio.encoder_stream_id != broadcast.stream_id):
                    ended.append(studio_id)
                else:
                    studio.live_heartbeat_at = datetime.now(UTC)
        for studio_id in ended:
            async with self._lock(studio_id):  # re-check: a restart may have raced the read
                broadcast = self.broadcasts.get(studio_id)
                async with self.db.session() as session:
                    studio = await session.get(Studio, studio_id)
                if broadcast is None or (
                        studio is not None and studio.live
                        and studio.live_instance == self.process_id
                        and studio.encoder_stream_id == broadcast.stream_id):
                    continue
                log.info("studio %s was taken offline elsewhere", studio_id)
                await self._stop_broadcast(studio_id, local_only=True)


HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 10.0


def _fresh(heartbeat: datetime | None) -> bool:
    if heartbeat is None:
        return False
    if heartbeat.tzinfo is None:  # SQLite returns naive UTC
        heartbeat = heartbeat.replace(tzinfo=UTC)
    return (datetime.now(UTC) - heartbeat).total_seconds() < STALE_SECONDS


async def _count(session: Any, column: Any, *where: Any) -> int:
    return int((await session.execute(select(func.count(column)).where(*where))).scalar_one())


def ingest_prefix(studio_id: str, source_id: str) -> str:
    return f"studio/{studio_id}/{source_id}"


def fields_present(body: dict[str, Any], mapping: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Request fields that were sent, renamed to column names."""
    return {column: body[name] for name, column in mapping if name in body}
