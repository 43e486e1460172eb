"""Calls domain logic: sessions (one media-core Peer each, created when the session first
negotiates), pushed and pulled tracks, renegotiation, data channels and track status. No
Quart imports.

Track ids in the media core: a track pushed by Calls session S as `trackName` N is
`calls/S/N`. A pull names its source by `sessionId` + `trackName`; a WHIP room's tracks are
pulled with `sessionId: "live:<room>"` and `trackName` either the publisher's mid (the core's
`live/<room>/<mid>`) or simply `audio` / `video` (the room's first track of that kind);
a protected room only by the apps granted it (`LiveRoomAccess`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiortc import RTCDataChannel, RTCRtpTransceiver
from aiortc import sdp as aiortc_sdp
from sqlalchemy import update

from gateway.calls.apps import AppStore
from gateway.calls.live_access import LiveRoomAccess
from gateway.calls.models import CallsSession
from gateway.calls.schemas import (
    CloseTracksRequest,
    DataChannelsRequest,
    NewSessionRequest,
    RenegotiateRequest,
    SessionDescription,
    TrackObject,
    TracksRequest,
    UpdateTracksRequest,
)
from gateway.db import Database
from gateway.media_setup import CALLS_SDP_LIMITS
from gateway.ratelimit import TokenBucketLimiter
from media import (
    MediaCore,
    MediaEvent,
    NegotiationError,
    Peer,
    PeerClosed,
    PeerClosedError,
    Subscription,
    TrackExists,
    UnknownTrack,
)
from media.sdplimits import check_sdp

log = logging.getLogger("mediagate.calls")

TRACKS_PER_CALL = 64
CALLS_PER_SECOND = 50
INACTIVE_AFTER = 30.0
CONNECT_WAIT = 5.0
LIVE_SESSION_PREFIX = "live:"
CLOSED_SESSION_TTL = 600.0
PURGE_INTERVAL = 10.0
PEERLESS_SESSION_TTL = 300.0
"""A session created without an offer holds no PeerConnection until a call negotiates one
(which then has the media core's connect timeout); one that never does is closed after
this long."""
KINDS = ("audio", "video")

Json = dict[str, Any]


class CallsError(Exception):
    """A whole-request failure, rendered as `{errorCode, errorDescription}` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TrackError(Exception):
    """A problem with one track object: reported on that track, the call still answers 200."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def local_track_id(session_id: str, track_name: str) -> str:
    return f"calls/{session_id}/{track_name}"


def placement_key(session_id: str) -> str:
    """The session's key in the shared media placement table (which replica holds it)."""
    return f"calls/session/{session_id}"


@dataclass
class LocalTrack:
    name: str
    track_id: str
    transceiver: RTCRtpTransceiver | None
    mid: str | None
    kind: str | None = None
    bidirectional: bool = False
    pending: bool = False
    """SFU-offered: becomes a published track when the client's answer arrives."""
    closed: bool = False


@dataclass
class RemoteTrack:
    session_id: str
    track_name: str
    track_id: str
    subscription: Subscription
    negotiated: bool = False
    closed: bool = False
    simulcast: Json | None = None

    @property
    def mid(self) -> str | None:
        return self.subscription.mid


@dataclass
class DataChannel:
    name: str
    location: str
    id: int
    channel: RTCDataChannel
    owner_session: str | None = None
    subscribers: list[DataChannel] = field(default_factory=list)


@dataclass
class LiveSession:
    id: str
    app_id: str
    peer: Peer | None = None
    """None until the session first negotiates, and again once it is closed."""
    local: dict[str, LocalTrack] = field(default_factory=dict)
    remote: list[RemoteTrack] = field(default_factory=list)
    channels: list[DataChannel] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed_at: float | None = None
    close_reason: str = ""
    final_state: Json | None = None
    """What GET reports once closed (the tracks, all inactive)."""
    created_at: float = field(default_factory=time.monotonic)
    expiry: asyncio.TimerHandle | None = None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def local_by_mid(self, mid: str) -> LocalTrack | None:
        return next((t for t in self.local.values() if t.mid == mid and not t.closed), None)

    def remote_by_mid(self, mid: str) -> RemoteTrack | None:
        return next((t for t in self.remote if t.mid == mid and not t.closed), None)

    def local_channel(self, name: str) -> DataChannel | None:
        return next((c for c in self.channels if c.location == "local" and c.name == name), None)


def _track_result(track: TrackObject, **values: Any) -> Json:
    result: Json = {}
    for key in ("location", "mid", "sessionId", "trackName"):
        value = getattr(track, key)
        if value is not None:
            result[key] = value
    result.update({k: v for k, v in values.items() if v is not None})
    return result


def _error_result(track: TrackObject, error: TrackError) -> Json:
    return _track_result(track, errorCode=error.code, errorDescription=error.message)


def _parse_sdp(description: SessionDescription | None, expected: str) -> str:
    if description is None or description.sdp is None:
        raise CallsError(400, "invalid_session_description", "sessionDescription.sdp is required")
    if description.type is not None and description.type != expected:
        raise CallsError(
            400, "invalid_session_description", f"sessionDescription.type must be {expected}"
        )
    sdp = description.sdp
    try:
        check_sdp(sdp, CALLS_SDP_LIMITS)
        parsed = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:
        raise CallsError(
            400, "invalid_session_description", f"sessionDescription.sdp is malformed: {exc}"
        ) from None
    if not sdp.lstrip().startswith("v=0") or not parsed.media:
        raise CallsError(
            400, "invalid_session_description", "sessionDescription.sdp has no media sections"
        )
    return sdp


def _media_sections(sdp: str) -> dict[str, tuple[str, str]]:
    """mid -> (kind, direction) of every audio/video m-line."""
    parsed = aiortc_sdp.SessionDescription.parse(sdp)
    return {
        m.rtp.muxId: (m.kind, m.direction or "sendrecv")
        for m in parsed.media
        if m.kind in KINDS and m.rtp.muxId
    }


def _check_count(items: list[Any], what: str) -> None:
    if len(items) > TRACKS_PER_CALL:
        raise CallsError(
            400, "too_many_tracks",
            f"at most {TRACKS_PER_CALL} {what} per call, got {len(items)}",
        )


class CallsService:
    def __init__(self, db: Database, core: MediaCore, live_access: LiveRoomAccess) -> None:
        self.db = db
        self.core = core
        self.live_access = live_access
        # replicas share the instance identity; the process holding the peers is this one
        self.replica_id = f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:16]}"
        self.apps = AppStore(db)
        self.sessions: dict[str, LiveSession] = {}
        self.limiter = TokenBucketLimiter(CALLS_PER_SECOND, CALLS_PER_SECOND)
        self._remove_listener = core.add_listener(self._on_media_event)
        self._monitor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_session_closed: Callable[[str], Awaitable[None]] | None = None
        """Called with the session id once its PeerConnection is gone (placement release)."""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._monitor = asyncio.get_running_loop().create_task(self._purge_closed())

    async def stop(self) -> None:
        self._remove_listener()
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        live = [s for s in self.sessions.values() if not s.closed]
        for session in live:
            peer = session.peer
            self._release(session, "gateway stopping")
            if peer is not None:
                await peer.close("gateway stopping")
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self._mark_closed([s.id for s in live])

    async def _purge_closed(self) -> None:
        """Forget closed sessions once they have been reported closed for a while."""
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            self.purge_closed(time.monotonic())

    def purge_closed(self, now: float) -> None:
        for session_id, session in list(self.sessions.items()):
            if session.closed_at is not None and now - session.closed_at > CLOSED_SESSION_TTL:
                del self.sessions[session_id]
                self.limiter.forget(session_id)  # calls on the closed session made a new one

    def _on_media_event(self, event: MediaEvent) -> Any:
        if isinstance(event, PeerClosed):
            session = self.sessions.get(event.peer_id)
            # a session without a peer has dropped the one closing (see _peer_scope)
            if session is not None and not session.closed and session.peer is not None:
                self._release(session, event.reason)
                return self._mark_closed([session.id])
        return None

    def _release(self, session: LiveSession, reason: str) -> None:
        """Mark the session closed and let go of everything it held but its final state."""
        session.closed_at = time.monotonic()
        session.close_reason = reason
        session.final_state = self.session_state(session)
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        self.limiter.forget(session.id)
        self._forget_media(session)

    def _forget_media(self, session: LiveSession) -> None:
        """Drop the session's peer and everything hung off it: tracks and data channels."""
        for channel in session.channels:
            channel.subscribers.clear()
            owner = self.sessions.get(channel.owner_session or "")
            source = owner.local_channel(channel.name) if owner is not None else None
            if source is not None and channel in source.subscribers:
                source.subscribers.remove(channel)
        session.channels.clear()
        session.local.clear()
        session.remote.clear()
        session.peer = None

    def _expire(self, session: LiveSession) -> None:
        """A session created without an offer that has not negotiated: close it."""
        session.expiry = None
        if session.closed or session.peer is not None:
            return  # negotiating: the peer's connect timeout rules now
        self._release(session, "no negotiation within "
                               f"{PEERLESS_SESSION_TTL:g} s of the session's creation")
        task = asyncio.get_running_loop().create_task(self._mark_closed([session.id]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mark_closed(self, session_ids: list[str]) -> None:
        if not session_ids:
            return
        async with self.db.session() as db:
            await db.execute(
                update(CallsSession)
                .where(CallsSession.id.in_(session_ids))
                .values(closed=True, closed_at=datetime.now(UTC))
            )
        if self.on_session_closed is not None:
            for session_id in session_ids:
                await self.on_session_closed(session_id)

    # -- sessions -----------------------------------------------------------------------

    async def new_session(
        self, app_id: str, request: NewSessionRequest, *, correlation_id: str | None,
        thirdparty: bool,
    ) -> Json:
        offer = None
        if request.sessionDescription is not None:
            offer = _parse_sdp(request.sessionDescription, "offer")
        session = LiveSession(uuid.uuid4().hex, app_id)
        result: Json = {"sessionId": session.id}
        try:
            if offer is not None:
                answer = await self._accept_offer(session, offer, {})
                result["sessionDescription"] = {"type": "answer", "sdp": answer}
            async with self.db.session() as db:
                db.add(CallsSession(
                    id=session.id, app_id=app_id, created_at=datetime.now(UTC), closed=False,
                    replica_id=self.replica_id, correlation_id=correlation_id,
                    thirdparty=thirdparty,
                ))
        except BaseException:
            if session.peer is not None:
                await session.peer.close("session setup failed")
            raise
        if session.peer is None:
            self._arm_expiry(session)
        self.sessions[session.id] = session
        return result

    async def get_session(self, app_id: str, session_id: str, *,
                          owner_known_gone: bool = False) -> LiveSession:
        """The session held here. `owner_known_gone`: no live replica claims it (so a row
        that is still open belongs to a replica that died)."""
        session = self.sessions.get(session_id)
        if session is not None and session.app_id == app_id:
            return session
        async with self.db.session() as db:
            row = await db.get(CallsSession, session_id)
            if row is None or row.app_id != app_id:
                raise CallsError(404, "session_not_found",
                                 f"session {session_id} does not exist")
            if owner_known_gone and not row.closed:
                row.closed, row.closed_at = True, datetime.now(UTC)
                closed = True
            else:
                closed = row.closed
        if closed or row.replica_id == self.replica_id:
            raise CallsError(404, "session_closed", f"session {session_id} is closed")
        raise CallsError(
            409, "session_on_other_instance",
            f"session {session_id} is served by another gateway replica ({row.replica_id}); "
            "route its calls there",
        )

    async def check_rate(self, session_id: str) -> float | None:
        """Seconds to wait when the session is over 50 calls per second, else None."""
        decision = await self.limiter.hit(session_id)
        return None if decision.allowed else decision.retry_after

    def _check_open(self, session: LiveSession) -> None:
        if session.closed:
            raise CallsError(
                400, "session_closed",
                f"session {session.id}'s PeerConnection is closed ({session.close_reason})",
            )

    # -- the session's PeerConnection ---------------------------------------------------

    async def _peer(self, session: LiveSession) -> Peer:
        """The session's peer, created (with the core's connect timeout) on first need."""
        if session.peer is None:
            self._check_open(session)  # it may have expired while this call waited
            session.peer = await self.core.create_peer(peer_id=session.id)
        return session.peer

    @contextlib.asynccontextmanager
    async def _peer_scope(self, session: LiveSession) -> AsyncIterator[None]:
        """A call that may create the session's peer: if it ends without having negotiated
        anything on a peer it created, the peer is dropped again (the session stays)."""
        fresh = session.peer is None
        try:
            yield
        finally:
            peer = session.peer
            if (fresh and peer is not None and not session.closed
                    and peer.pc.localDescription is None):
                self._forget_media(session)  # first, so its PeerClosed leaves the session open
                await peer.close("nothing negotiated")
                if session.expiry is None:
                    self._arm_expiry(session)

    def _arm_expiry(self, session: LiveSession) -> None:
        left = session.created_at + PEERLESS_SESSION_TTL - time.monotonic()
        # an empty context: the caller's would keep its whole request alive until then
        session.expiry = asyncio.get_running_loop().call_later(
            max(0.0, left), self._expire, session, context=contextvars.Context()
        )

    # -- negotiation helpers ------------------------------------------------------------

    async def _accept_offer(self, session: LiveSession, sdp: str, publish: dict[str, str]) -> str:
        peer = await self._peer(session)
        if peer.pc.signalingState == "have-local-offer":
            raise CallsError(409, "renegotiation_pending",
                             "the session waits for the answer to the SFU's offer: send it with "
                             "renegotiate before offering")
        try:
            return await peer.accept_offer(sdp, publish=publish)
        except TrackExists as exc:
            raise CallsError(409, "track_exists", f"track {exc} is already published") from None
        except PeerClosedError:
            raise CallsError(400, "session_closed", "the session is closed") from None
        except NegotiationError as exc:
            raise CallsError(400, "invalid_session_description",
                             f"the offer could not be applied: {exc}") from None

    async def _create_offer(self, session: LiveSession) -> str:
        peer = await self._peer(session)
        try:
            return await peer.create_offer()
        except PeerClosedError:
            raise CallsError(400, "session_closed", "the session is closed") from None
        except NegotiationError as exc:
            raise CallsError(409, "negotiation_failed",
                             f"the SFU could not create an offer: {exc}") from None

    @staticmethod
    def _register_answered(peer: Peer, pending: dict[str, str]) -> None:
        """Publish SFU-offered receive transceivers now that the client answered them."""
        for mid, track_id in pending.items():
            with contextlib.suppress(TrackExists):  # the id is live elsewhere: stays pending
                peer.register_published({mid: track_id})

    def _mark_negotiated(self, session: LiveSession) -> None:
        for track in session.remote:
            if track.mid is not None:
                track.negotiated = True

    # -- tracks/new ---------------------------------------------------------------------

    async def new_tracks(self, session: LiveSession, request: TracksRequest) -> Json:
        _check_count(request.tracks, "tracks")
        self._check_open(session)
        async with session.lock, self._peer_scope(session):
            if request.sessionDescription is not None:
                return await self._tracks_with_offer(session, request)
            return await self._tracks_without_offer(session, request)

    def _check_new_name(self, session: LiveSession, name: str | None, taken: set[str]) -> str:
        if not name:
            raise TrackError("invalid_track", "trackName is required for local tracks")
        existing = session.local.get(name)
        if (existing is not None and not existing.closed) or name in taken:
            raise TrackError("track_exists",
                             f"this session already has a track named {name!r}")
        return name

    async def _tracks_with_offer(self, session: LiveSession, request: TracksRequest) -> Json:
        sdp = _parse_sdp(request.sessionDescription, "offer")
        sections = _media_sections(sdp)
        bound = {t.mid for t in session.local.values() if not t.closed}
        results: list[Json | None] = []
        publish: dict[str, str] = {}
        names: dict[str, str] = {}
        for track in request.tracks:
            try:
                if track.location != "local":
                    raise TrackError(
                        "invalid_track",
                        "a request with an offer only pushes local tracks; pull remote tracks "
                        "in a tracks/new call without a sessionDescription",
                    )
                name = self._check_new_name(session, track.trackName, set(names.values()))
                if not track.mid:
                    raise TrackError("invalid_track", "mid is required for local tracks")
                section = sections.get(track.mid)
                if section is None:
                    raise TrackError("unknown_mid", f"the offer has no media section {track.mid}")
                if section[1] not in ("sendonly", "sendrecv"):
                    raise TrackError("invalid_track",
                                     f"media section {track.mid} does not send media")
                if track.mid in bound or track.mid in publish:
                    raise TrackError("invalid_track",
                                     f"mid {track.mid} is already bound to a track")
            except TrackError as error:
                results.append(_error_result(track, error))
                continue
            publish[track.mid] = local_track_id(session.id, name)
            names[track.mid] = name
            results.append(None)
        discovered: list[Json] = []
        if request.autoDiscover:
            for mid, (_kind, direction) in sections.items():
                if mid in publish or mid in bound or direction not in ("sendonly", "sendrecv"):
                    continue
                name = uuid.uuid4().hex
                publish[mid] = local_track_id(session.id, name)
                names[mid] = name
                discovered.append({"location": "local", "mid": mid, "trackName": name})
        answer = await self._accept_offer(session, sdp, publish)
        self._mark_negotiated(session)
        peer = await self._peer(session)
        transceivers = {t.mid: t for t in peer.pc.getTransceivers() if t.mid}
        out: list[Json] = []
        pending_results = iter(request.tracks)
        for result in results:
            track = next(pending_results)
            if result is not None:
                out.append(result)
                continue
            out.append(self._bind_pushed(session, track.mid or "", names, transceivers)
                       or _track_result(track))
        for item in discovered:
            error = self._bind_pushed(session, item["mid"], names, transceivers)
            out.append(error or item)
        return {
            "requiresImmediateRenegotiation": False,
            "sessionDescription": {"type": "answer", "sdp": answer},
            "tracks": out,
        }

    def _bind_pushed(self, session: LiveSession, mid: str, names: dict[str, str],
                     transceivers: dict[str, RTCRtpTransceiver]) -> Json | None:
        """Record a pushed track; an error result when the core did not publish it."""
        name = names[mid]
        track_id = local_track_id(session.id, name)
        info = self.core.get_track(track_id)
        if info is None:
            return {"location": "local", "mid": mid, "trackName": name,
                    "errorCode": "invalid_track",
                    "errorDescription": f"media section {mid} was not accepted for receiving"}
        session.local[name] = LocalTrack(name, track_id, transceivers.get(mid), mid, info.kind)
        return None

    async def _tracks_without_offer(self, session: LiveSession, request: TracksRequest) -> Json:
        out: list[Json] = []
        offered_local: list[tuple[int, LocalTrack]] = []
        offered_remote: list[tuple[int, RemoteTrack, TrackObject]] = []
        needs_offer = False
        taken: set[str] = set()
        for track in request.tracks:
            try:
                if track.location == "local":
                    name = self._check_new_name(session, track.trackName, taken)
                    if track.kind not in KINDS:
                        raise TrackError("invalid_track",
                                         "kind (audio or video) is required when the SFU "
                                         "generates the offer")
                    direction = "sendrecv" if track.bidirectionalMediaStream else "recvonly"
                    peer = await self._peer(session)
                    transceiver = peer.add_receiver(track.kind, direction=direction)
                    local = LocalTrack(name, local_track_id(session.id, name), transceiver, None,
                                       track.kind, track.bidirectionalMediaStream, pending=True)
                    session.local[name] = local
                    taken.add(name)
                    offered_local.append((len(out), local))
                    out.append(_track_result(track))
                    needs_offer = True
                elif track.location == "remote":
                    remote, reused = await self._pull(session, track)
                    session.remote.append(remote)
                    if not reused:
                        needs_offer = True
                    else:
                        remote.negotiated = True
                    offered_remote.append((len(out), remote, track))
                    out.append(_track_result(track))
                else:
                    raise TrackError("invalid_track", "location must be local or remote")
            except TrackError as error:
                out.append(_error_result(track, error))
        result: Json = {"requiresImmediateRenegotiation": needs_offer, "tracks": out}
        if needs_offer:
            try:
                offer = await self._create_offer(session)
            except CallsError:
                for _, local in offered_local:
                    session.local.pop(local.name, None)
                    if local.transceiver is not None:
                        local.transceiver.direction = "inactive"
                for _, remote, _ in offered_remote:
                    (await self._peer(session)).remove_subscription(remote.subscription)
                    session.remote.remove(remote)
                raise
            result["sessionDescription"] = {"type": "offer", "sdp": offer}
        for index, local in offered_local:
            local.mid = local.transceiver.mid if local.transceiver is not None else None
            out[index]["mid"] = local.mid
        for index, remote, track in offered_remote:
            out[index]["mid"] = remote.mid if not track.mid else track.mid
        return result

    async def _resolve_remote(self, session: LiveSession, track: TrackObject) -> str:
        if not track.sessionId or not track.trackName:
            raise TrackError("invalid_track",
                             "sessionId and trackName are required for remote tracks")
        if track.sessionId.startswith(LIVE_SESSION_PREFIX):
            room = track.sessionId[len(LIVE_SESSION_PREFIX):]
            if not self.live_access.may_pull(session.app_id, room):
                # the same answer whether or not the room exists
                raise TrackError("forbidden", "this app may not pull that live room: the room is "
                                 "protected and CALLS_LIVE_ROOMS does not grant it to the app")
            return self._resolve_live(room, track.trackName)
        owner = self.sessions.get(track.sessionId)
        if owner is None:
            await self._not_here(session, track.sessionId)
        if owner is None or owner.app_id != session.app_id:
            raise TrackError("session_not_found",
                             f"session {track.sessionId} does not exist in this app")
        if owner.closed:
            raise TrackError("session_closed", f"session {track.sessionId} is closed")
        local = owner.local.get(track.trackName)
        if local is None or local.closed:
            raise TrackError("track_not_found",
                             f"session {track.sessionId} has no track named {track.trackName!r}")
        if local.pending:
            raise TrackError("track_not_ready",
                             f"track {track.trackName!r} is waiting for its session to "
                             "renegotiate")
        if owner.peer is None:  # not reached: a published track has negotiated
            raise TrackError("track_not_ready", f"session {track.sessionId} has not negotiated")
        if not owner.peer.connected.is_set():
            try:
                await asyncio.wait_for(owner.peer.connected.wait(), CONNECT_WAIT)
            except TimeoutError:
                raise TrackError(
                    "session_not_connected",
                    f"session {track.sessionId}'s PeerConnection did not connect within "
                    f"{CONNECT_WAIT:g} s",
                ) from None
        if self.core.get_track(local.track_id) is None:
            raise TrackError("track_not_found", f"track {track.trackName!r} has ended")
        return local.track_id

    async def _not_here(self, session: LiveSession, owner_id: str) -> None:
        """Raise the per-track error for a session that is open on another replica."""
        async with self.db.session() as db:
            row = await db.get(CallsSession, owner_id)
        if row is not None and row.app_id == session.app_id and not row.closed:
            raise TrackError(
                "session_on_other_instance",
                f"session {owner_id} is held by another gateway replica; media is pulled "
                "within one replica, so create the pulling session there",
            )

    def _resolve_live(self, room: str, name: str) -> str:
        tracks = self.core.list_tracks(f"live/{room}/")
        exact = next((t for t in tracks if t.track_id == f"live/{room}/{name}"), None)
        if exact is not None:
            return exact.track_id
        by_kind = next((t for t in tracks if name in KINDS and t.kind == name), None)
        if by_kind is not None:
            return by_kind.track_id
        if not tracks:
            raise TrackError("session_not_found", f"live room {room!r} has no publisher")
        raise TrackError("track_not_found", f"live room {room!r} has no track {name!r}")

    async def _pull(self, session: LiveSession, track: TrackObject) -> tuple[RemoteTrack, bool]:
        """Subscribe; True when an existing transceiver (`mid: "#name"`) carries it."""
        track_id = await self._resolve_remote(session, track)
        if any(r.track_id == track_id and not r.closed for r in session.remote):
            raise TrackError("track_exists", "this session already pulls that track")
        transceiver = None
        if track.mid:
            transceiver = self._transceiver_for(session, track.mid)
            info = self.core.get_track(track_id)
            if info is not None and transceiver.kind != info.kind:
                raise TrackError("invalid_track",
                                 f"transceiver {track.mid} carries {transceiver.kind}, "
                                 f"the track is {info.kind}")
        peer = await self._peer(session)
        try:
            sub = peer.add_subscription(track_id, transceiver=transceiver)
        except UnknownTrack:
            raise TrackError("track_not_found", "the track has ended") from None
        except ValueError as exc:  # the transceiver cannot carry this track
            raise TrackError("invalid_track", str(exc)) from None
        except PeerClosedError:
            raise TrackError("session_closed", "this session is closed") from None
        remote = RemoteTrack(track.sessionId or "", track.trackName or "", track_id, sub,
                             simulcast=track.simulcast.model_dump(exclude_none=True)
                             if track.simulcast else None)
        return remote, transceiver is not None

    def _transceiver_for(self, session: LiveSession, mid: str) -> RTCRtpTransceiver:
        """`#name`: the transceiver of this session's track `name`; else the mid itself."""
        if mid.startswith("#"):
            local = session.local.get(mid[1:])
            if local is None or local.closed or local.transceiver is None:
                raise TrackError("unknown_mid", f"this session has no track named {mid[1:]!r}")
            if not local.bidirectional:
                raise TrackError("invalid_track",
                                 f"track {mid[1:]!r} was not pushed with "
                                 "bidirectionalMediaStream")
            transceiver = local.transceiver
        else:
            transceivers = session.peer.pc.getTransceivers() if session.peer is not None else []
            transceiver = next((t for t in transceivers if t.mid == mid), None)
            if transceiver is None:
                raise TrackError("unknown_mid", f"this session has no transceiver {mid}")
        peer = session.peer
        if peer is not None and any(
            s.transceiver is transceiver for s in peer.subscriptions.values()
        ):
            raise TrackError("invalid_track", f"transceiver {mid} already carries a track")
        return transceiver

    # -- renegotiate --------------------------------------------------------------------

    async def renegotiate(self, session: LiveSession, request: RenegotiateRequest) -> Json:
        self._check_open(session)
        description = request.sessionDescription
        kind = description.type if description is not None and description.type else "answer"
        sdp = _parse_sdp(description, kind)
        async with session.lock, self._peer_scope(session):
            if kind == "offer":
                answer = await self._accept_offer(session, sdp, {})
                self._mark_negotiated(session)
                return {"sessionDescription": {"type": "answer", "sdp": answer}}
            peer = session.peer
            if peer is None or peer.pc.signalingState != "have-local-offer":
                raise CallsError(400, "invalid_session_description",
                                 "there is no SFU offer to answer; renegotiate answers the offer "
                                 "returned with requiresImmediateRenegotiation")
            try:
                await peer.accept_answer(sdp)
            except PeerClosedError:
                raise CallsError(400, "session_closed", "the session is closed") from None
            except NegotiationError as exc:
                raise CallsError(400, "invalid_session_description",
                                 f"the answer could not be applied: {exc}") from None
            self._mark_negotiated(session)
            pending = {t.mid: t.track_id for t in session.local.values()
                       if t.pending and not t.closed and t.mid}
            self._register_answered(peer, pending)
            for track in session.local.values():
                if track.pending and self.core.get_track(track.track_id) is not None:
                    track.pending = False
        return {}

    # -- tracks/close -------------------------------------------------------------------

    async def close_tracks(self, session: LiveSession, request: CloseTracksRequest) -> Json:
        _check_count(request.tracks, "tracks")
        self._check_open(session)
        offer = None
        if request.sessionDescription is not None:
            offer = _parse_sdp(request.sessionDescription, "offer")
        out: list[Json] = []
        closed_any = False
        async with session.lock, self._peer_scope(session):
            for item in request.tracks:
                mid = item.mid
                local = session.local_by_mid(mid) if mid else None
                remote = session.remote_by_mid(mid) if mid else None
                if local is not None:
                    local.closed = True
                    if local.pending:
                        local.pending = False
                    else:
                        await self.core.end_track(local.track_id, "closed by client")
                    if not request.force and local.transceiver is not None:
                        local.transceiver.direction = "inactive"
                elif remote is not None:
                    remote.closed = True
                    (await self._peer(session)).remove_subscription(remote.subscription)
                else:
                    out.append({"mid": mid or "", "errorCode": "unknown_mid",
                                "errorDescription": f"no open track has mid {mid!r}"
                                if mid else "mid is required"})
                    continue
                closed_any = True
                out.append({"mid": mid})
            result: Json = {"requiresImmediateRenegotiation": False, "tracks": out}
            if offer is not None:
                answer = await self._accept_offer(session, offer, {})
                result["sessionDescription"] = {"type": "answer", "sdp": answer}
            elif closed_any and not request.force:
                result["sessionDescription"] = {
                    "type": "offer", "sdp": await self._create_offer(session)
                }
                result["requiresImmediateRenegotiation"] = True
        return result

    # -- tracks/update ------------------------------------------------------------------

    async def update_tracks(self, session: LiveSession, request: UpdateTracksRequest) -> Json:
        _check_count(request.tracks, "tracks")
        self._check_open(session)
        out: list[Json] = []
        async with session.lock:
            for track in request.tracks:
                try:
                    out.append(await self._update_track(session, track))
                except TrackError as error:
                    out.append(_error_result(track, error))
        return {"requiresImmediateRenegotiation": False, "tracks": out}

    async def _update_track(self, session: LiveSession, track: TrackObject) -> Json:
        if track.location != "remote":
            raise TrackError("invalid_track", "only remote tracks can be updated")
        if not track.mid:
            raise TrackError("invalid_track", "mid is required to update a track")
        current = session.remote_by_mid(track.mid)
        if current is None:
            raise TrackError("unknown_mid", f"no pulled track has mid {track.mid!r}")
        same = (track.sessionId in (None, current.session_id)
                and track.trackName in (None, current.track_name))
        if not same:
            # point this transceiver at another remote track (no renegotiation needed)
            if current.subscription.ended:
                raise TrackError("invalid_track",
                                 f"the track on transceiver {track.mid} has ended; pull the "
                                 "new track with tracks/new")
            replacement = TrackObject(location="remote", sessionId=track.sessionId,
                                      trackName=track.trackName)
            track_id = await self._resolve_remote(session, replacement)
            info = self.core.get_track(track_id)
            transceiver = current.subscription.transceiver
            if info is not None and info.kind != transceiver.kind:
                raise TrackError("invalid_track",
                                 f"transceiver {track.mid} carries {transceiver.kind}")
            peer = await self._peer(session)
            try:
                sub = peer.retarget_subscription(current.subscription, track_id)
            except UnknownTrack:
                raise TrackError("track_not_found", "the track has ended") from None
            except ValueError as exc:
                raise TrackError("invalid_track", str(exc)) from None
            current.closed = True
            current = RemoteTrack(track.sessionId or "", track.trackName or "", track_id, sub,
                                  negotiated=True)
            session.remote.append(current)
        if track.simulcast is not None:
            # the core forwards one encoding per track: preferences are kept, not applied
            current.simulcast = track.simulcast.model_dump(exclude_none=True)
        result: Json = {"location": "remote", "mid": track.mid,
                        "sessionId": current.session_id, "trackName": current.track_name}
        if current.simulcast:
            result["simulcast"] = current.simulcast
        return result

    # -- datachannels/new ---------------------------------------------------------------

    async def new_datachannels(self, session: LiveSession, request: DataChannelsRequest) -> Json:
        _check_count(request.dataChannels, "data channels")
        self._check_open(session)
        out: list[Json] = []
        async with session.lock, self._peer_scope(session):
            had_sctp = session.peer is not None and session.peer.pc.sctp is not None
            created = False
            for item in request.dataChannels:
                entry: Json = {"location": item.location, "dataChannelName": item.dataChannelName}
                if item.sessionId is not None:
                    entry["sessionId"] = item.sessionId
                try:
                    channel = await self._open_channel(session, item.location,
                                                       item.dataChannelName, item.sessionId)
                except TrackError as error:
                    entry.update(errorCode=error.code, errorDescription=error.message)
                else:
                    entry["id"] = channel.id
                    created = True
                out.append(entry)
            result: Json = {"requiresImmediateRenegotiation": False, "dataChannels": out}
            if created and not had_sctp:
                # the connection has no SCTP association yet: the SFU offers one
                result["sessionDescription"] = {
                    "type": "offer", "sdp": await self._create_offer(session)
                }
                result["requiresImmediateRenegotiation"] = True
        return result

    async def _open_channel(self, session: LiveSession, location: str, name: str,
                            owner_id: str | None) -> DataChannel:
        if not name:
            raise TrackError("invalid_data_channel", "dataChannelName is required")
        source: DataChannel | None = None
        if location == "local":
            if session.local_channel(name) is not None:
                raise TrackError("data_channel_exists",
                                 f"this session already publishes {name!r}")
        else:
            if not owner_id:
                raise TrackError("invalid_data_channel",
                                 "sessionId is required for remote data channels")
            owner = self.sessions.get(owner_id)
            if owner is None or owner.app_id != session.app_id or owner.closed:
                raise TrackError("session_not_found",
                                 f"session {owner_id} does not exist in this app")
            source = owner.local_channel(name)
            if source is None:
                raise TrackError("data_channel_not_found",
                                 f"session {owner_id} publishes no data channel {name!r}")
        peer = await self._peer(session)
        used = peer.data_channel_ids() | {c.id for c in session.channels}
        stream_id = next(i for i in range(1, 65535) if i not in used)
        rtc_channel = peer.pc.createDataChannel(name, negotiated=True, id=stream_id)
        channel = DataChannel(name, location, stream_id, rtc_channel, owner_id)
        session.channels.append(channel)
        if source is not None:
            source.subscribers.append(channel)
        else:
            rtc_channel.on("message", lambda message: self._fan_out(channel, message))
        return channel

    @staticmethod
    def _fan_out(channel: DataChannel, message: str | bytes) -> None:
        for subscriber in list(channel.subscribers):
            if subscriber.channel.readyState == "open":
                try:
                    subscriber.channel.send(message)
                except Exception:  # a closing association: drop, as a lossy relay would
                    log.debug("data channel %s: send failed", subscriber.name, exc_info=True)
            elif subscriber.channel.readyState == "closed":
                channel.subscribers.remove(subscriber)

    # -- state --------------------------------------------------------------------------

    def _published_status(self, track_id: str) -> str:
        if self.core.get_track(track_id) is None:
            return "inactive"
        if not self.core.track_started(track_id):
            return "waiting"
        last = self.core.last_frame_at(track_id)
        if last is not None and time.monotonic() - last > INACTIVE_AFTER:
            return "inactive"
        return "active"

    def _source_closed(self, remote: RemoteTrack) -> bool:
        owner = self.sessions.get(remote.session_id)
        if owner is None:
            return False
        local = owner.local.get(remote.track_name)
        return local is None or local.closed or owner.closed

    def session_state(self, session: LiveSession) -> Json:
        if session.final_state is not None:
            return session.final_state
        tracks: list[Json] = []
        for local in session.local.values():
            if local.closed or session.closed:
                status = "inactive"
            elif local.pending:
                status = "waiting"
            else:
                status = self._published_status(local.track_id)
            entry: Json = {"location": "local", "trackName": local.name, "status": status}
            if local.mid is not None:
                entry["mid"] = local.mid
            if local.kind is not None:
                entry["kind"] = local.kind
            tracks.append(entry)
        for remote in session.remote:
            if (remote.closed or session.closed or remote.subscription.ended
                    or self._source_closed(remote)):
                status = "inactive"
            elif (not remote.negotiated or session.peer is None
                  or not session.peer.connected.is_set()):
                status = "waiting"
            else:
                status = self._published_status(remote.track_id)
            entry = {"location": "remote", "sessionId": remote.session_id,
                     "trackName": remote.track_name, "status": status}
            if remote.mid is not None:
                entry["mid"] = remote.mid
            tracks.append(entry)
        return {"tracks": tracks}
