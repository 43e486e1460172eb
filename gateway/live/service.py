"""Live-rooms domain logic: rooms, their publisher and viewers, on the media core.

A room is created by its first publisher and removed once it has neither publisher nor
viewers; playing never creates one. Each publish/play is a session resource (RFC 9725)
that can be ended alone. Room state is queryable by other APIs through `room_state()`
(`gateway_state().services["live"]`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gateway.live.recording import Recordings
from gateway.live.sdpfrag import (
    OfferSummary,
    SdpError,
    build_fragment,
    parse_fragment,
    summarize_offer,
)
from gateway.media_setup import WHIP_SDP_LIMITS
from media import (
    MediaCore,
    MediaError,
    MediaEvent,
    NegotiationError,
    Peer,
    PeerClosed,
    TrackEnded,
    TrackExists,
    TrackPublished,
)
from media.sdplimits import SdpTooLarge, check_sdp

log = logging.getLogger("mediagate.live")

HEALTHY = "ok"
ROOM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TRACK_PREFIX = "live/"

Role = Literal["publisher", "viewer"]


def health_text() -> str:
    """`/healthz` answers `ok` while the process serves, as upstream."""
    return HEALTHY


def valid_room(name: str) -> bool:
    return ROOM_NAME.fullmatch(name) is not None


def track_prefix(room: str) -> str:
    return f"{TRACK_PREFIX}{room}/"


def room_key(room: str) -> str:
    """Placement key of a room: the replica holding its publisher (several replicas)."""
    return f"live/room/{room}"


def session_key(session_id: str) -> str:
    return f"live/session/{session_id}"


class LiveError(Exception):
    """A failure with the HTTP status and message the contract gives it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def invalid_sdp(reason: str | None = None) -> LiveError:
    return LiveError(400, f"invalid SDP: {reason}" if reason else "invalid SDP")


async def _summarize(offer: str) -> OfferSummary:
    """The offer's media, refused before any parsing when over the shared SDP limits."""
    try:
        check_sdp(offer, WHIP_SDP_LIMITS)
    except SdpTooLarge as exc:
        raise invalid_sdp(str(exc)) from None
    try:
        return await asyncio.to_thread(summarize_offer, offer)
    except SdpError:
        raise invalid_sdp() from None


@dataclass
class LiveSession:
    id: str
    room: str
    role: Role
    peer: Peer
    etag: str
    created: float = field(default_factory=time.time)

    @property
    def location(self) -> str:
        base = "/api/whip/publish" if self.role == "publisher" else "/api/whep/play"
        return f"{base}/{self.room}/{self.id}"


@dataclass
class Room:
    name: str
    publisher: LiveSession | None = None
    viewers: dict[str, LiveSession] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @property
    def empty(self) -> bool:
        return self.publisher is None and not self.viewers


@dataclass(frozen=True)
class RoomState:
    """What another API may want to know about a room (e.g. Calls pulling live tracks)."""

    name: str
    publisher_peer_id: str | None
    track_ids: list[str]
    viewer_peer_ids: list[str]


@dataclass(frozen=True)
class PatchResult:
    etag: str
    fragment: str | None
    """The server's fragment after an ICE restart; None for trickled candidates."""


@dataclass
class Traffic:
    bytes: int = 0
    packets: int = 0


def _etag() -> str:
    return f'"{uuid.uuid4().hex[:16]}"'


class LiveService:
    def __init__(self, core: MediaCore, *, max_subs_per_room: int = 0,
                 recordings: Recordings | None = None) -> None:
        self.core = core
        self.max_subs_per_room = max_subs_per_room
        self.recordings = recordings
        self.rooms: dict[str, Room] = {}
        self._sessions: dict[str, LiveSession] = {}
        self._by_peer: dict[str, LiveSession] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._ended_traffic: dict[str, Traffic] = {}
        self._unlisten: Callable[[], None] | None = None
        self.on_forget: Callable[[LiveSession, bool], None] | None = None
        """Called when a session ends, with whether its room went away with it."""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._unlisten is None:
            self._unlisten = self.core.add_listener(self._on_event)

    async def stop(self) -> None:
        for name in list(self.rooms):
            await self.close_room(name)
        if self.recordings is not None:
            await self.recordings.wait()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def _lock(self, room: str) -> asyncio.Lock:
        lock = self._locks.get(room)
        if lock is None:
            lock = self._locks[room] = asyncio.Lock()
        return lock

    # -- publish / play -----------------------------------------------------------------

    async def publish(self, room_name: str, offer: str) -> tuple[LiveSession, str]:
        summary = await _summarize(offer)
        if not summary.sending:
            raise invalid_sdp()
        async with self._lock(room_name):
            room = self.rooms.get(room_name)
            if room is not None and room.publisher is not None:
                raise LiveError(409, "publisher already exists in this room")
            if self.core.list_tracks(track_prefix(room_name)):
                # the previous publisher's tracks are still being torn down
                raise LiveError(409, "publisher already exists in this room")
            peer = await self.core.create_peer()
            try:
                answer = await peer.accept_offer(offer, publish_prefix=f"live/{room_name}",
                                                 limits=WHIP_SDP_LIMITS)
            except TrackExists:
                await peer.close("publish rejected")
                raise LiveError(409, "publisher already exists in this room") from None
            except (NegotiationError, MediaError):
                await peer.close("invalid offer")
                raise invalid_sdp() from None
            if not peer.published:
                await peer.close("nothing to publish")
                raise invalid_sdp()
            room = self.rooms.setdefault(room_name, Room(room_name))
            session = self._add_session(room, "publisher", peer)
            room.publisher = session
            log.info("room %s: publisher %s with %d tracks", room_name, session.id,
                     len(peer.published))
            return session, answer

    async def play(self, room_name: str, offer: str) -> tuple[LiveSession, str]:
        summary = await _summarize(offer)
        async with self._lock(room_name):
            room = self.rooms.get(room_name)
            tracks = self.core.list_tracks(track_prefix(room_name))
            if room is None or room.publisher is None or not tracks:
                raise LiveError(404, "no active publisher in room")
            if self.max_subs_per_room > 0 and len(room.viewers) >= self.max_subs_per_room:
                raise LiveError(403, "subscriber limit reached")
            slots = dict(summary.receiving)
            chosen: list[str] = []
            for track in sorted(tracks, key=lambda t: t.mid):
                if slots.get(track.kind, 0) > 0:
                    slots[track.kind] -= 1
                    chosen.append(track.track_id)
            if not chosen:
                raise invalid_sdp()
            peer = await self.core.create_peer()
            try:
                answer = await peer.accept_offer(offer, subscribe=chosen, limits=WHIP_SDP_LIMITS)
            except (NegotiationError, MediaError):
                await peer.close("invalid offer")
                raise invalid_sdp() from None
            session = self._add_session(room, "viewer", peer)
            room.viewers[session.id] = session
            return session, answer

    def _add_session(self, room: Room, role: Role, peer: Peer) -> LiveSession:
        session = LiveSession(uuid.uuid4().hex, room.name, role, peer, _etag())
        self._sessions[session.id] = session
        self._by_peer[peer.id] = session
        return session

    # -- session resources --------------------------------------------------------------

    def has_session(self, session_id: str) -> bool:
        return session_id in self._sessions

    def session(self, room: str, session_id: str, role: Role) -> LiveSession:
        session = self._sessions.get(session_id)
        if session is None or session.room != room or session.role != role:
            raise LiveError(404, "session not found")
        return session

    async def end_session(self, room: str, session_id: str, role: Role) -> None:
        session = self.session(room, session_id, role)
        await session.peer.close("session deleted")
        self._forget(session)

    async def patch_session(self, room: str, session_id: str, role: Role, fragment_text: str,
                            if_match: str | None) -> PatchResult:
        session = self.session(room, session_id, role)
        if if_match is not None and if_match.strip() not in ("*", session.etag):
            raise LiveError(412, "precondition failed")
        try:
            check_sdp(fragment_text, WHIP_SDP_LIMITS)
            fragment = parse_fragment(fragment_text)
        except (SdpError, SdpTooLarge) as exc:
            raise LiveError(400, f"invalid SDP fragment: {exc}") from None
        peer = session.peer
        current = peer.remote_ice_ufrag()
        restart = fragment.ufrag is not None and current is not None and fragment.ufrag != current
        if restart and not fragment.pwd:
            raise LiveError(400, "invalid SDP fragment: ice-pwd missing")
        body = None
        try:
            if restart:
                body = build_fragment(peer.restart_ice(fragment.ufrag or "", fragment.pwd or ""))
                session.etag = _etag()
            for candidate in fragment.candidates:
                await peer.add_ice_candidate(candidate.line, candidate.mid)
            if fragment.end_of_candidates:
                await peer.add_ice_candidate("")
        except (MediaError, ValueError) as exc:
            raise LiveError(400, f"invalid SDP fragment: {exc}") from None
        return PatchResult(session.etag, body)

    # -- rooms --------------------------------------------------------------------------

    async def close_room(self, room_name: str) -> bool:
        room = self.rooms.get(room_name)
        if room is None:
            return False
        sessions = list(room.viewers.values())
        if room.publisher is not None:
            sessions.insert(0, room.publisher)
        await asyncio.gather(
            *(s.peer.close("room closed") for s in sessions), return_exceptions=True
        )
        for session in sessions:
            self._forget(session)
        self.rooms.pop(room_name, None)
        return True

    def list_rooms(self) -> list[dict[str, object]]:
        return [
            {
                "name": room.name,
                "hasPublisher": room.publisher is not None,
                "tracks": len(self.core.list_tracks(track_prefix(room.name))),
                "subscribers": len(room.viewers),
            }
            for room in sorted(self.rooms.values(), key=lambda r: r.created)
        ]

    def room_state(self, room_name: str) -> RoomState | None:
        room = self.rooms.get(room_name)
        if room is None:
            return None
        return RoomState(
            name=room.name,
            publisher_peer_id=room.publisher.peer.id if room.publisher else None,
            track_ids=[t.track_id for t in self.core.list_tracks(track_prefix(room.name))],
            viewer_peer_ids=[s.peer.id for s in room.viewers.values()],
        )

    def traffic(self) -> dict[str, Traffic]:
        """RTP bytes/packets received per room: ended tracks plus the latest stats sample."""
        totals = {room: Traffic(t.bytes, t.packets) for room, t in self._ended_traffic.items()}
        for track_id, stats in self.core.stats().tracks.items():
            room = _room_of(track_id)
            if room is None or self.core.get_track(track_id) is None:
                continue  # ended tracks are already in _ended_traffic
            entry = totals.setdefault(room, Traffic())
            entry.bytes += stats.bytes
            entry.packets += stats.packets_received
        return totals

    # -- media events -------------------------------------------------------------------

    def _on_event(self, event: MediaEvent) -> None:
        if isinstance(event, PeerClosed):
            session = self._by_peer.get(event.peer_id)
            if session is not None:
                self._forget(session)
        elif isinstance(event, TrackPublished):
            room = _room_of(event.track.track_id)
            if room is not None and self.recordings is not None:
                self.recordings.start(room, event.track)
        elif isinstance(event, TrackEnded):
            room = _room_of(event.track.track_id)
            stats = self.core.stats().tracks.get(event.track.track_id)
            if room is not None and stats is not None:
                entry = self._ended_traffic.setdefault(room, Traffic())
                entry.bytes += stats.bytes
                entry.packets += stats.packets_received

    def _forget(self, session: LiveSession) -> None:
        self._sessions.pop(session.id, None)
        self._by_peer.pop(session.peer.id, None)
        room = self.rooms.get(session.room)
        room_gone = room is None
        if room is not None:
            if room.publisher is session:
                room.publisher = None
            room.viewers.pop(session.id, None)
            if room.empty:
                room_gone = True
                del self.rooms[room.name]
                lock = self._locks.get(room.name)
                if lock is not None and not lock.locked():
                    del self._locks[room.name]
        if self.on_forget is not None:
            self.on_forget(session, room_gone)


def _room_of(track_id: str) -> str | None:
    if not track_id.startswith(TRACK_PREFIX):
        return None
    room, sep, _ = track_id[len(TRACK_PREFIX):].partition("/")
    return room if sep else None
