"""media.sdpfix with real offers (tests/gst/offers/): GStreamer 1.22 webrtcbin with
max-bundle offers its second section as `m=video 0` + `a=bundle-only` inside the BUNDLE group
(bundled, RFC 8843 §6); Chromium 156 never uses bundle-only, and offers a stopped transceiver
with port 0 outside the group (rejected). Answers come from the media core's real aiortc peer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from gateway.live.sdpfrag import summarize_offer
from media import MediaConfig, MediaCore
from media.network import NetworkConfig, peer_factory
from media.sdpfix import accept_bundle_only, reject_stopped_sections
from tests.gst.driver import offer
from tests.live.helpers import strip_candidates

GSTREAMER = ["gstreamer-publish-vp8-opus", "gstreamer-publish-h264-opus", "gstreamer-play-vp8-opus"]
LOOPBACK = NetworkConfig(loopback=True, allowed_ips=["127.0.0.1"])


def m_lines(sdp: str) -> list[str]:
    return re.findall(r"^(m=.*?)\r?$", sdp, flags=re.M)


def bundle(sdp: str) -> list[str]:
    match = re.search(r"^a=group:BUNDLE(.*?)\r?$", sdp, flags=re.M)
    assert match is not None
    return match.group(1).split()


@pytest.fixture
async def core() -> AsyncIterator[MediaCore]:
    media_core = MediaCore(MediaConfig(peer_factory=peer_factory(LOOPBACK)))
    await media_core.start()
    try:
        yield media_core
    finally:
        await media_core.stop()


@pytest.mark.parametrize("name", GSTREAMER)
def test_gstreamer_offers_are_bundle_only_shaped(name: str) -> None:
    sdp = offer(name)
    assert bundle(sdp) == ["audio0", "video1"]
    assert [m.split()[1] for m in m_lines(sdp)] == ["9", "0"]
    assert sdp.count("a=bundle-only") == 1


@pytest.mark.parametrize("name", GSTREAMER)
def test_bundle_only_sections_get_the_bundles_port(name: str) -> None:
    sdp = offer(name)
    fixed = accept_bundle_only(sdp)
    assert [m.split()[1] for m in m_lines(fixed)] == ["9", "9"]
    # only the port changes
    assert fixed.replace("m=video 9 ", "m=video 0 ") == sdp


def test_bundle_only_outside_any_group_is_not_bundled() -> None:
    sdp = offer("gstreamer-publish-vp8-opus").replace("a=group:BUNDLE audio0 video1",
                                                       "a=group:BUNDLE audio0")
    assert accept_bundle_only(sdp) is sdp
    assert re.search(r"^m=video 0 ", reject_stopped_sections(sdp, sdp.replace("m=video 0",
                                                                             "m=video 9")), re.M)


@pytest.mark.parametrize("name", ["chromium-publish", "chromium-stopped"])
def test_browser_offers_are_left_alone(name: str) -> None:
    sdp = offer(name)
    assert "a=bundle-only" not in sdp
    assert accept_bundle_only(sdp) is sdp


def test_whep_offer_summary_counts_bundle_only_slots() -> None:
    """The WHEP viewer's video slot is bundle-only: without it, the viewer got audio only."""
    summary = summarize_offer(offer("gstreamer-play-vp8-opus"))
    assert summary.receiving == Counter(audio=1, video=1)
    assert summarize_offer(offer("gstreamer-publish-h264-opus")).sending == Counter(
        audio=1, video=1)
    # a rejected section (Chromium's stopped transceiver) is still no slot
    assert summarize_offer(offer("chromium-stopped")).sending == Counter(audio=1)


@pytest.mark.parametrize(("name", "codec"), [
    ("gstreamer-publish-vp8-opus", "video/VP8"),
    ("gstreamer-publish-h264-opus", "video/H264"),
])
async def test_core_answers_bundle_only_video_inside_the_bundle(
    core: MediaCore, name: str, codec: str
) -> None:
    peer = await core.create_peer()
    answer = await peer.accept_offer(offer(name), publish_prefix="live/gst")
    assert bundle(answer) == ["audio0", "video1"]
    ports = [m.split()[1] for m in m_lines(answer)]
    assert ports[0] == ports[1] != "0"  # one transport: the bundle's
    tracks = {t.kind: t for t in core.list_tracks("live/gst/")}
    assert {k: t.codec for k, t in tracks.items()} == {"audio": "audio/opus", "video": codec}
    assert "a=setup:active" in answer  # actpass offer: we are the DTLS client (RFC 8842)


async def test_core_answers_gstreamer_viewer_with_video(core: MediaCore) -> None:
    publisher = await core.create_peer()
    await publisher.accept_offer(offer("gstreamer-publish-vp8-opus"), publish_prefix="live/v")
    viewer = await core.create_peer()
    answer = await viewer.accept_offer(offer("gstreamer-play-vp8-opus"),
                                       subscribe=[t.track_id for t in core.list_tracks("live/v/")])
    assert bundle(answer) == ["audio0", "video1"]
    assert [m.split()[1] != "0" for m in m_lines(answer)] == [True, True]
    assert answer.count("a=sendonly") == 2


async def test_core_still_rejects_a_browsers_stopped_section(core: MediaCore) -> None:
    sdp = strip_candidates(offer("chromium-stopped"))
    peer = await core.create_peer()
    answer = await peer.accept_offer(sdp, publish_prefix="live/chromium")
    assert bundle(answer) == ["0"]
    assert [m.split()[1] == "0" for m in m_lines(answer)] == [False, True]
    assert [t.kind for t in core.list_tracks("live/chromium/")] == ["audio"]


async def test_port_zero_without_bundle_only_is_rejected(core: MediaCore) -> None:
    """Inside the group but without `a=bundle-only`: RFC 8843 reads port 0 as rejected."""
    sdp = offer("gstreamer-publish-vp8-opus").replace("a=bundle-only\r\n", "")
    peer = await core.create_peer()
    answer = await peer.accept_offer(sdp, publish_prefix="live/rejected")
    assert bundle(answer) == ["audio0"]
    assert re.search(r"^m=video 0 ", answer, re.M)


async def test_unbundled_offer_gets_an_unbundled_answer(core: MediaCore) -> None:
    """GStreamer with `bundle-policy=none` offers no BUNDLE group; aiortc would answer with
    one (every mid) although it gives each section its own transport."""
    sdp = offer("gstreamer-publish-unbundled")
    assert "a=group:" not in sdp
    peer = await core.create_peer()
    answer = await peer.accept_offer(sdp, publish_prefix="live/unbundled")
    assert "a=group:BUNDLE" not in answer
    audio_port, video_port = (m.split()[1] for m in m_lines(answer))
    assert "0" not in (audio_port, video_port) and audio_port != video_port
    assert len(core.list_tracks("live/unbundled/")) == 2
