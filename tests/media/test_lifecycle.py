"""Peers that never connect or fail DTLS are torn down and their tracks unregistered."""

from __future__ import annotations

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
