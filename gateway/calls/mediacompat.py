"""What Calls needs from the media core beyond its public interface, in one place.

The core's public `Peer` registers published tracks only when it *answers* an offer, ends a
published track only when an offer stops sending it, and always subscribes on a new
transceiver. Calls also needs: tracks the SFU offered (`location: local` without an offer)
registered once the client's *answer* arrives, tracks closed with `force` (no SDP), and
pulls onto an existing transceiver (`mid: "#name"`, `tracks/update`). These helpers use the
core's internals for exactly that; when the core grows public methods, swap them here.
"""

from __future__ import annotations

from aiortc import RTCRtpTransceiver

from media import MediaCore, Peer, Subscription
from media.forward import ForwardTrack, FrameQueue


def register_answered_tracks(peer: Peer, publish: dict[str, str]) -> list[str]:
    """Register SFU-offered receive transceivers (by mid) as published tracks."""
    known = {t.track_id for t in peer.published.values()}
    mapping = {mid: tid for mid, tid in publish.items()
               if mid not in peer.published and tid not in known}
    if mapping:
        peer._register_published(mapping)
    return [tid for mid, tid in mapping.items() if mid in peer.published]


async def end_published_track(core: MediaCore, track_id: str, reason: str) -> bool:
    """End a published track now: its subscriptions and taps close, TrackEnded fires."""
    track = core._tracks.get(track_id)
    if track is None or track.ended:
        return False
    await core._end_track(track, reason)
    return True


def subscribe_on_transceiver(
    peer: Peer, track_id: str, transceiver: RTCRtpTransceiver
) -> Subscription:
    """Like `Peer.add_subscription`, but sending on an existing transceiver."""
    core = peer.core
    track = core._get_published(track_id)
    kind = track.info.kind
    queue = FrameQueue(
        kind, core.config.queue_frames(kind), on_need_keyframe=track.request_keyframe
    )
    if transceiver.direction in ("recvonly", "inactive"):
        transceiver.direction = "sendrecv" if transceiver.direction == "recvonly" else "sendonly"
    sub = Subscription(peer, track, transceiver, queue)
    transceiver.sender.replaceTrack(ForwardTrack(kind, queue, on_start=sub._start))
    peer.subscriptions[sub.id] = sub
    core._subscription_added(sub)
    return sub


def retarget_subscription(peer: Peer, sub: Subscription, track_id: str) -> Subscription:
    """Feed `sub`'s transceiver from another published track of the same codec.

    The sender keeps its ForwardTrack and queue (stopping them would end aiortc's sender
    loop for good); only the queue's source changes, restarting at a keyframe.
    """
    core = peer.core
    track = core._get_published(track_id)
    if track.info.codec.lower() != sub.track.info.codec.lower():
        raise ValueError(f"the transceiver sends {sub.track.info.codec}, "
                         f"the track is {track.info.codec}")
    queue = sub.queue
    sub.track.detach(queue)
    sub.ended = True
    peer.subscriptions.pop(sub.id, None)
    core._subscription_removed(sub)
    queue._on_need_keyframe = track.request_keyframe
    queue._need_keyframe = track.info.kind == "video"
    moved = Subscription(peer, track, sub.transceiver, queue)
    peer.subscriptions[moved.id] = moved
    core._subscription_added(moved)
    track.attach(queue)
    return moved


def sctp_channel_ids(peer: Peer) -> set[int]:
    """SCTP stream ids already used by data channels on the peer's connection."""
    sctp = peer.pc.sctp
    channels = getattr(sctp, "_data_channels", {}) if sctp is not None else {}
    return {int(i) for i in channels}
