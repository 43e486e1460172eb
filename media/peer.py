"""One RTCPeerConnection owned by the media core: publishing, subscriptions, renegotiation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
)

from . import hook, ice, sdpfix
from .detach import detached
from .forward import ForwardTrack, FrameQueue
from .sdplimits import SdpLimits, check_sdp
from .track import PublishedTrack
from .types import IceRestart, NegotiationError, PeerClosedError, TrackExists, TrackInfo

if TYPE_CHECKING:
    from .core import MediaCore

logger = logging.getLogger(__name__)

RECV_DIRECTIONS = ("recvonly", "sendrecv")


class Subscription:
    """One published track sent to one peer on its own sendonly transceiver."""

    def __init__(
        self, peer: Peer, track: PublishedTrack, transceiver: RTCRtpTransceiver, queue: FrameQueue
    ) -> None:
        self.id = uuid.uuid4().hex
        self.peer = peer
        self.track = track
        self.transceiver = transceiver
        self.queue = queue
        self.ended = False
        self.plis_received = 0
        self.firs_received = 0
        self.nacks_received = 0
        self.nacked_packets = 0
        hook.intercept_keyframe_requests(transceiver.sender, track.request_keyframe)
        hook.watch_sender_rtcp(transceiver.sender, self._count_rtcp)

    @property
    def track_id(self) -> str:
        return self.track.track_id

    @property
    def mid(self) -> str | None:
        """The mid of this subscription's transceiver (None until negotiated)."""
        return self.transceiver.mid

    @property
    def sender(self) -> RTCRtpSender:
        return self.transceiver.sender

    def _count_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt == RTCP_PSFB_PLI:
                self.plis_received += 1
            elif packet.fmt == RTCP_PSFB_FIR:
                self.firs_received += 1
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.nacks_received += 1
            self.nacked_packets += len(packet.lost)

    def _start(self) -> None:
        if not self.ended:
            self.track.attach(self.queue)

    def _end(self) -> None:
        """Stop forwarding; the transceiver stops sending at the next negotiation.

        The sender is parked rather than stopped (its ForwardTrack waits on an empty queue), so
        the transceiver can carry another track later (`Peer.add_subscription(transceiver=)`);
        aiortc cannot restart a sender whose track ended.
        """
        if self.ended:
            return
        self.ended = True
        self.track.detach(self.queue)
        self.queue.retarget(_noop)
        direction = self.transceiver.direction
        self.transceiver.direction = "recvonly" if direction == "sendrecv" else "inactive"


def _noop() -> None:
    pass


class Peer:
    """A peer connection with a small typed interface for the WHIP/WHEP/Calls/Studio flows.

    All negotiation methods are serialized per peer. SDP in and out is a plain string; answers
    and offers carry all ICE candidates (aiortc waits for gathering).
    """

    def __init__(self, core: MediaCore, peer_id: str, pc: RTCPeerConnection) -> None:
        self.core = core
        self.id = peer_id
        self.pc = pc
        self.published: dict[str, PublishedTrack] = {}  # by mid
        self.subscriptions: dict[str, Subscription] = {}  # by subscription id
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self.connected = asyncio.Event()
        self._closing = False
        self._lock = asyncio.Lock()
        pc.on("connectionstatechange", self._on_connection_state)

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected.set()
            self.core._peer_connected(self)
        elif state in ("failed", "closed") and not self._closing:
            self.core._schedule_close(self, f"connection {state}")

    def _check_open(self) -> None:
        if self._closing:
            raise PeerClosedError(self.id)

    # -- negotiation --------------------------------------------------------------------

    @detached
    async def accept_offer(
        self,
        offer_sdp: str,
        *,
        publish_prefix: str | None = None,
        publish: Mapping[str, str] | None = None,
        subscribe: Iterable[str] = (),
        limits: SdpLimits | None = None,
    ) -> str:
        """Apply a remote offer and return the answer SDP.

        Every new m-line the remote sends on is registered as a published track: with the id
        `publish[mid]` if given, else `<publish_prefix>/<mid>`, else it is not published.
        `subscribe` adds subscriptions (before answering) to the given published track ids.
        The offer must be within `limits` (default `config.sdp_limits`): SdpTooLarge.
        """
        async with self._lock:
            self._check_open()
            check_sdp(offer_sdp, limits or self.core.config.sdp_limits)
            try:
                # off the event loop: only aiortc's own parse in setRemoteDescription runs on it
                description = await asyncio.to_thread(aiortc_sdp.SessionDescription.parse,
                                                      offer_sdp)
            except Exception as exc:
                raise NegotiationError(f"invalid offer: {exc}") from exc
            self._check_open()
            to_publish: dict[str, str] = {}
            for media in description.media:
                mid = media.rtp.muxId
                if media.kind not in ("audio", "video") or mid is None:
                    continue
                sending = media.direction in ("sendonly", "sendrecv")
                if mid in self.published:
                    if not sending:
                        await self.core._end_track(self.published[mid], "publisher removed track")
                    continue
                track_id = (publish or {}).get(mid)
                if track_id is None and publish_prefix is not None:
                    track_id = f"{publish_prefix}/{mid}"
                if sending and track_id is not None:
                    if self.core.get_track(track_id) is not None or track_id in to_publish.values():
                        raise TrackExists(track_id)
                    to_publish[mid] = track_id
            subscribe = list(subscribe)
            for track_id in subscribe:
                self.core._get_published(track_id)  # raises UnknownTrack before any change
            added = [self._add_subscription(track_id) for track_id in subscribe]
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
                self._install_hooks()
                await asyncio.sleep(0)  # let other requests run between aiortc's steps
                answer = await self.pc.createAnswer()
                await asyncio.sleep(0)
                await self.pc.setLocalDescription(answer)
                self._tune_sockets()
            except Exception as exc:
                for sub in added:
                    self._remove_subscription(sub)
                raise NegotiationError(str(exc)) from exc
            for sub in added:
                if sub.mid is None:  # the offer had no free m-line of this kind
                    self._remove_subscription(sub)
            self._register_published(to_publish)
            return sdpfix.reject_stopped_sections(offer_sdp, self.pc.localDescription.sdp)

    @detached
    async def create_offer(self) -> str:
        """Create and apply a local offer (e.g. after adding/removing subscriptions)."""
        async with self._lock:
            self._check_open()
            try:
                offer = await self.pc.createOffer()
                await self.pc.setLocalDescription(offer)
                self._tune_sockets()
            except Exception as exc:
                raise NegotiationError(str(exc)) from exc
            self._install_hooks()
            return self.pc.localDescription.sdp

    @detached
    async def accept_answer(
        self, answer_sdp: str, *, publish: Mapping[str, str] | None = None
    ) -> list[str]:
        """Apply the remote answer to our offer.

        `publish` maps mids of receive transceivers we offered (see `add_receiver`) to track
        ids to register now that the direction is negotiated; returns the ids registered.
        """
        async with self._lock:
            self._check_open()
            check_sdp(answer_sdp, self.core.config.sdp_limits)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
            except Exception as exc:
                raise NegotiationError(str(exc)) from exc
            self._install_hooks()
            return self.register_published(publish or {})

    def add_receiver(
        self, kind: str, *, direction: Literal["recvonly", "sendrecv"] = "recvonly"
    ) -> RTCRtpTransceiver:
        """A transceiver for media the remote will send (offer it with create_offer).

        `sendrecv` also offers to send on it: a track can be added later with
        `add_subscription(track_id, transceiver=)`.
        """
        self._check_open()
        return self.pc.addTransceiver(kind, direction=direction)

    def register_published(self, publish: Mapping[str, str]) -> list[str]:
        """Register negotiated receive transceivers (by mid) as published tracks.

        Mids already published here or not negotiated as receiving are skipped; a track id
        used by another peer raises TrackExists. Returns the ids registered.
        """
        self._check_open()
        mapping = {mid: tid for mid, tid in publish.items() if mid not in self.published}
        for track_id in mapping.values():
            if self.core.get_track(track_id) is not None:
                raise TrackExists(track_id)
        self._register_published(mapping)
        return [tid for mid, tid in mapping.items() if mid in self.published]

    @detached
    async def add_ice_candidate(self, candidate: str, sdp_mid: str | None = None) -> None:
        """Add a trickled remote candidate (``candidate:...`` or ``a=candidate:...`` line).

        An empty string means end-of-candidates, as in WebRTC.
        """
        self._check_open()
        line = candidate.strip().removeprefix("a=").removeprefix("candidate:")
        if not line:
            await self.pc.addIceCandidate(None)  # type: ignore[arg-type]
            return
        try:
            parsed = aiortc_sdp.candidate_from_sdp(line)
        except (ValueError, IndexError) as exc:
            raise NegotiationError(f"invalid candidate: {exc}") from exc
        # aiortc only takes candidates for an m-line that owns a transport: a bundled one's
        # (or an unknown or missing mid) go to the bundle owner's transport.
        parsed.sdpMid = ice.route_mid(self.pc, sdp_mid)
        if parsed.sdpMid is None:
            raise NegotiationError("no negotiated m-line to add the candidate to")
        await self.pc.addIceCandidate(parsed)

    def remote_ice_ufrag(self) -> str | None:
        """The remote ICE ufrag connectivity checks use now (None before negotiation)."""
        return ice.remote_ufrag(self.pc)

    def restart_ice(self, remote_ufrag: str, remote_pwd: str) -> IceRestart:
        """ICE restart on the same sockets: the remote's new credentials, fresh local ones.

        aiortc cannot renegotiate ICE, so this is the credential swap of RFC 8445 §9 on the
        live agents; our candidates are unchanged and returned with the new credentials.
        """
        self._check_open()
        ufrag, pwd = ice.ice_string(8), ice.ice_string(24)
        ice.set_credentials(self.pc, local=(ufrag, pwd), remote=(remote_ufrag, remote_pwd))
        kind, mid = ice.bundle_owner(self.pc)
        candidates = [
            "candidate:" + aiortc_sdp.candidate_to_sdp(c)
            for transport in ice.ice_transports(self.pc)
            for c in transport.iceGatherer.getLocalCandidates()
        ]
        return IceRestart(ufrag, pwd, kind, mid, candidates)

    def data_channel_ids(self) -> set[int]:
        """SCTP stream ids used by data channels on this connection (either side's)."""
        return hook.sctp_stream_ids(self.pc)

    def _tune_sockets(self) -> None:
        size = self.core.config.udp_receive_buffer
        if size:
            try:
                hook.set_receive_buffer(self.pc, size)
            except OSError:
                logger.warning("peer %s: cannot set SO_RCVBUF", self.id, exc_info=True)

    def _install_hooks(self) -> None:
        # Runs right after set*Description returns, before aiortc's connect task can call
        # receive() on any new receiver.
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if hook.receive_hook(receiver) is None and not getattr(
                receiver, hook.RECEIVER_STARTED
            ):
                hook.install_receive_hook(receiver)

    def _register_published(self, to_publish: Mapping[str, str]) -> None:
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            if mid not in to_publish or transceiver.currentDirection not in RECV_DIRECTIONS:
                continue
            codec = transceiver._codecs[0]
            info = TrackInfo(
                track_id=to_publish[mid],
                peer_id=self.id,
                kind=transceiver.kind,  # type: ignore[arg-type]
                mid=mid,
                codec=codec.mimeType,
                clock_rate=codec.clockRate,
            )
            track = self.core._register_track(info, transceiver.receiver)
            self.published[mid] = track

    # -- subscriptions ------------------------------------------------------------------

    def add_subscription(
        self, track_id: str, transceiver: RTCRtpTransceiver | None = None
    ) -> Subscription:
        """Send published track `track_id` to this peer; negotiate with create_offer().

        By default on a new sendonly transceiver; with `transceiver`, on that existing one
        (its direction gains "send"; if already negotiated, its codec must match the track).
        """
        self._check_open()
        return self._add_subscription(track_id, transceiver)

    def _add_subscription(
        self, track_id: str, transceiver: RTCRtpTransceiver | None = None
    ) -> Subscription:
        track = self.core._get_published(track_id)
        kind = track.info.kind
        if transceiver is None:
            transceiver = self.pc.addTransceiver(kind, direction="sendonly")
            codecs = [
                c
                for c in RTCRtpSender.getCapabilities(kind).codecs
                if c.mimeType.lower() in (track.info.codec.lower(), f"{kind}/rtx")
            ]
            transceiver.setCodecPreferences(codecs)
        else:
            self._check_reusable(transceiver, track)
            if transceiver.direction == "recvonly":
                transceiver.direction = "sendrecv"
            elif transceiver.direction == "inactive":
                transceiver.direction = "sendonly"
            parked = transceiver.sender.track
            if isinstance(parked, ForwardTrack) and parked.readyState == "live":
                return self._feed(parked.queue, track, transceiver)
        queue = FrameQueue(
            kind, self.core.config.queue_frames(kind), on_need_keyframe=track.request_keyframe
        )
        sub = Subscription(self, track, transceiver, queue)
        transceiver.sender.replaceTrack(ForwardTrack(kind, queue, on_start=sub._start))
        self.subscriptions[sub.id] = sub
        self.core._subscription_added(sub)
        return sub

    def _check_reusable(self, transceiver: RTCRtpTransceiver, track: PublishedTrack) -> None:
        kind = track.info.kind
        if transceiver.kind != kind:
            raise ValueError(f"transceiver is {transceiver.kind}, track is {kind}")
        if transceiver._codecs and (
            transceiver._codecs[0].mimeType.lower() != track.info.codec.lower()
        ):
            raise ValueError(
                f"transceiver sends {transceiver._codecs[0].mimeType}, track is {track.info.codec}"
            )
        if any(s.transceiver is transceiver for s in self.subscriptions.values()):
            raise ValueError("transceiver already carries a subscription")
        parked = transceiver.sender.track
        parked_live = isinstance(parked, ForwardTrack) and parked.readyState == "live"
        if hook.sender_stopped(transceiver.sender) and not parked_live:
            raise ValueError("the transceiver's sender has stopped")

    def _feed(
        self, queue: FrameQueue, track: PublishedTrack, transceiver: RTCRtpTransceiver
    ) -> Subscription:
        """A subscription on a transceiver whose ForwardTrack (and queue) already exist."""
        queue.retarget(track.request_keyframe)
        sub = Subscription(self, track, transceiver, queue)
        self.subscriptions[sub.id] = sub
        self.core._subscription_added(sub)
        forward = transceiver.sender.track
        assert isinstance(forward, ForwardTrack)
        if forward._on_start is None:
            track.attach(queue)  # the sender is already running
        else:
            forward._on_start = sub._start
        return sub

    def retarget_subscription(self, subscription: Subscription, track_id: str) -> Subscription:
        """Feed an existing subscription's transceiver from another track of the same codec.

        No renegotiation: the sender keeps running and its RTP timestamps continue; the new
        source starts at a keyframe. Returns the new Subscription (the old one has ended).
        """
        self._check_open()
        track = self.core._get_published(track_id)
        old = subscription
        if self.subscriptions.get(old.id) is not old:
            raise ValueError("not an active subscription of this peer")
        if track.info.codec.lower() != old.track.info.codec.lower():
            raise ValueError(
                f"the transceiver sends {old.track.info.codec}, the track is {track.info.codec}"
            )
        old.ended = True
        old.track.detach(old.queue)
        self.subscriptions.pop(old.id, None)
        self.core._subscription_removed(old)
        return self._feed(old.queue, track, old.transceiver)

    def remove_subscription(self, subscription: Subscription | str) -> None:
        """Stop sending a track; its m-line goes inactive at the next negotiation."""
        sub_id = subscription if isinstance(subscription, str) else subscription.id
        sub = self.subscriptions.get(sub_id)
        if sub is not None:
            self._remove_subscription(sub)

    def _remove_subscription(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.id, None)
        sub._end()
        self.core._subscription_removed(sub)

    def subscription_by_mid(self, mid: str) -> Subscription | None:
        return next((s for s in self.subscriptions.values() if s.mid == mid), None)

    # -- teardown -----------------------------------------------------------------------

    async def close(self, reason: str = "closed") -> None:
        """Close the connection, end its published tracks and subscriptions (idempotent)."""
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        published = list(self.published.values())
        try:
            for sub in list(self.subscriptions.values()):
                self._remove_subscription(sub)
            for track in published:
                await self.core._end_track(track, "publisher left")
            try:
                await self.pc.close()
            except Exception:
                logger.exception("peer %s: close failed", self.id)
        finally:
            self.core._peer_closed(self, reason, [t.track_id for t in published])
            self.closed.set()
