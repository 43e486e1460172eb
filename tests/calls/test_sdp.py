from __future__ import annotations

from gateway.calls.sdp import reject_stopped_sections

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
