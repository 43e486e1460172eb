"""Peers that never connect or fail DTLS are torn down and their tracks unregistered."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiortc import RTCSessionDescription
from media_clients import Publisher, wait_for

from media import MediaConfig, MediaCore, PeerClosed, TrackEnded

pytestmark = pytest.mark.usefixtures("loopback_ice")


async def test_peer_that_never_connects_is_closed() -> None:
    core = MediaCore(MediaConfig(connect_timeout=1.0))
    await core.start()
    events: list[object] = []
    core.add_listener(events.append)
    try:
        publisher = Publisher("video/VP8")
        peer = await core.create_peer()
        await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
        await peer.accept_offer(publisher.pc.localDescription.sdp, publish_prefix="live/ghost")
        await publisher.close()  # the answer is never applied: ICE never starts on the client
        assert len(core.list_tracks("live/ghost/")) == 2
        started = time.monotonic()
        await wait_for(lambda: not core.peers, 5)
        assert time.monotonic() - started < 3
        assert core.list_tracks() == []
        closed = [e for e in events if isinstance(e, PeerClosed)]
        assert [e.reason for e in closed] == ["connect timeout"]
        assert sorted(closed[0].published) == ["live/ghost/0", "live/ghost/1"]
        assert len([e for e in events if isinstance(e, TrackEnded)]) == 2
    finally:
        await core.stop()


async def test_per_peer_connect_timeout() -> None:
    core = MediaCore(MediaConfig(connect_timeout=1.0))
    await core.start()
    events: list[object] = []
    core.add_listener(events.append)
    try:
        patient = await core.create_peer("patient", connect_timeout=30.0)
        hasty = await core.create_peer("hasty", connect_timeout=0.2)
        await wait_for(lambda: "hasty" not in core.peers, 1)
        assert hasty.close_reason == "connect timeout"
        await asyncio.sleep(1.5)  # past the core's default: the patient peer is still open
        assert core.get_peer("patient") is patient and not patient.closed.is_set()
        assert [e.peer_id for e in events if isinstance(e, PeerClosed)] == ["hasty"]
    finally:
        await core.stop()


async def test_last_frame_at_tracks_media_arrival(core: MediaCore) -> None:
    publisher = Publisher("video/VP8", audio=False)
    peer = await core.create_peer()
    await publisher.publish(peer, "live/clock")
    (info,) = core.list_tracks("live/clock/")
    assert core.last_frame_at("live/nothing") is None
    await wait_for(lambda: core.track_started(info.track_id), 10)
    first = core.last_frame_at(info.track_id)
    assert first is not None and time.monotonic() - first < 1
    await wait_for(lambda: (core.last_frame_at(info.track_id) or 0) > first, 5)
    publisher.video_sender.replaceTrack(None)  # stops sending, stays connected
    await asyncio.sleep(0.5)
    stalled = core.last_frame_at(info.track_id)
    await asyncio.sleep(0.5)
    assert stalled is not None and core.last_frame_at(info.track_id) == stalled
    assert time.monotonic() - stalled >= 0.5
    await peer.close()
    assert core.last_frame_at(info.track_id) is None
    await publisher.close()


async def test_dtls_failure_tears_peer_down(core: MediaCore) -> None:
    events: list[object] = []
    core.add_listener(events.append)
    publisher = Publisher("video/VP8")
    peer = await core.create_peer()
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    # the core sees a client certificate that does not match the offered fingerprint
    forged = re.sub(
        r"a=fingerprint:sha-256 [0-9A-F:]+",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        publisher.pc.localDescription.sdp,
    )
    answer = await peer.accept_offer(forged, publish_prefix="live/bad")
    await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    started = time.monotonic()
    await wait_for(lambda: not core.peers, 10)
    assert time.monotonic() - started < 5
    assert core.list_tracks() == []
    assert any(isinstance(e, PeerClosed) for e in events)
    await publisher.close()


async def test_trickled_candidates_connect(core: MediaCore) -> None:
    publisher = Publisher("video/VP8", audio=False)
    peer = await core.create_peer()
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    offer = publisher.pc.localDescription.sdp
    candidates = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
    assert candidates
    bare = "\r\n".join(
        line
        for line in offer.splitlines()
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    ) + "\r\n"
    answer = await peer.accept_offer(bare, publish_prefix="live/trickle")
    await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    mid = publisher.pc.getTransceivers()[0].mid
    for line in candidates:
        await peer.add_ice_candidate(line, mid)
    await peer.add_ice_candidate("", mid)
    (info,) = core.list_tracks("live/trickle/")
    await wait_for(lambda: core.track_started(info.track_id), 10)
    await publisher.close()
