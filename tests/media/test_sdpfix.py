from __future__ import annotations

import re

import pytest
from media_clients import Publisher

from media import MediaCore
from media.sdpfix import reject_stopped_sections

OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n"
    "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n"
)
ANSWER = (
    "v=0\r\no=- 3 3 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n"
    "m=video 40000 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n"
)


def test_rejected_sections_stay_rejected_in_the_answer() -> None:
    fixed = reject_stopped_sections(OFFER, ANSWER)
    assert "a=group:BUNDLE 0\r\n" in fixed
    assert "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n" in fixed
    assert "m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\n" in fixed


def test_answers_to_offers_without_rejections_are_untouched() -> None:
    offer = OFFER.replace("m=video 0", "m=video 9")
    assert reject_stopped_sections(offer, ANSWER) is ANSWER


@pytest.mark.usefixtures("loopback_ice")
async def test_peer_answers_keep_stopped_sections_rejected(core: MediaCore) -> None:
    publisher = Publisher("video/VP8")
    try:
        await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
        offer = publisher.pc.localDescription.sdp
        audio_mid, video_mid = (t.mid for t in publisher.pc.getTransceivers())
        # what a browser offers after `transceiver.stop()` on the video transceiver
        stopped = re.sub(r"^m=video \d+", "m=video 0", offer, flags=re.M)
        stopped = stopped.replace(f"a=group:BUNDLE {audio_mid} {video_mid}",
                                  f"a=group:BUNDLE {audio_mid}")
        stopped = stopped.replace("a=sendonly", "a=inactive").replace(
            "a=inactive", "a=sendonly", 1)  # the audio section still sends
        peer = await core.create_peer()
        answer = await peer.accept_offer(stopped, publish_prefix="live/stopped")
        assert re.search(r"^m=video 0 ", answer, re.M)
        assert re.search(r"^m=audio [1-9]\d* ", answer, re.M)
        assert re.search(rf"^a=group:BUNDLE {audio_mid}\r$", answer, re.M)
        assert [t.track_id for t in core.list_tracks("live/stopped/")] == [
            f"live/stopped/{audio_mid}"
        ]
    finally:
        await publisher.close()
