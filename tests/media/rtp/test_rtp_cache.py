"""media.rtp.cache answering NACKs that arrive as real RTCP (serialized and parsed by aiortc)."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtcpPacket, RtcpRtpfbPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp.cache import PacketCache
from media.rtp.header import RtpHeader
from media.rtp.rtcp import nack_sequence_numbers
from tests.media.rtp.rtp_samples import h264_frames, rtp_packets


def test_answers_a_nack_with_the_original_packets() -> None:
    payloads = [p for frame in h264_frames()[:5] for p in frame.payloads]
    packets = rtp_packets(payloads, first_sequence=65530)  # wraps inside the run
    cache = PacketCache(capacity=64, max_age=1.0)
    for data in packets:
        cache.put(RtpHeader(data).sequence_number, data, now=0.5)
    # one PID/BLP pair: 65531 + bits 3, 4, 7 (aiortc cannot serialize a wrapped list itself)
    nack = bytes(RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=0x1234ABCD,
                                 lost=[65531, 65535, 65536, 65539]))
    [parsed] = RtcpPacket.parse(nack)
    assert isinstance(parsed, RtcpRtpfbPacket)
    wanted = nack_sequence_numbers(parsed)
    assert wanted == [65531, 65535, 0, 3]
    resent = cache.get_many(wanted, now=1.0)
    assert resent == [packets[1], packets[5], packets[6], packets[9]]
    assert cache.get_many(wanted, now=1.6) == []  # too old to be useful


def test_put_returns_extended_numbers_across_wraps() -> None:
    cache = PacketCache(capacity=8)
    extended = [cache.put(s, bytes([s & 0xFF]), 0.0) for s in (65534, 65535, 0, 1, 65533)]
    assert extended[1] - extended[0] == 1 and extended[2] - extended[1] == 1
    assert extended[3] - extended[0] == 3 and extended[4] == extended[0] - 1
    assert cache.get(65533, 0.0) == bytes([65533 & 0xFF])  # late packet stored too
    assert cache.get(65536 + 1, 0.0) == b"\x01"  # aiortc's unwrapped NACK numbers work


def test_bounded_by_capacity() -> None:
    cache = PacketCache(capacity=100)
    assert cache.capacity == 128
    for seq in range(1000):
        cache.put(seq, seq.to_bytes(2, "big"), 0.0)
    assert cache.get(999 - 127, 0.0) == (999 - 127).to_bytes(2, "big")
    assert cache.get(999 - 128, 0.0) is None  # overwritten by a later lap
    cache.put(500, b"ancient", 0.0)  # older than the ring: not stored
    assert cache.get(500, 0.0) is None
    assert cache.get(1000, 0.0) is None  # not received yet


def test_big_jump_invalidates_everything_older() -> None:
    cache = PacketCache(capacity=16)
    for seq in range(10):
        cache.put(seq, b"x", 0.0)
    cache.put(30000, b"y", 0.0)
    assert all(cache.get(seq, 0.0) is None for seq in range(10))
    assert cache.get(30000, 0.0) == b"y"


def test_clear_and_empty() -> None:
    cache = PacketCache()
    assert cache.get(0, 0.0) is None and cache.get(65535, 0.0) is None
    cache.put(5, b"p", 0.0)
    cache.clear()
    assert cache.get(5, 0.0) is None
    with pytest.raises(ValueError):
        PacketCache(capacity=0)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), st.lists(st.integers(1, 40), min_size=1, max_size=300),
       st.sampled_from([16, 64, 512]))
def test_holds_exactly_the_last_capacity_sequence_numbers(
    start: int, steps: list[int], capacity: int
) -> None:
    cache = PacketCache(capacity=capacity, max_age=10.0)
    seq = start
    stored: dict[int, bytes] = {}
    extended = 0
    for step in steps:
        seq = (seq + step) & 0xFFFF
        data = step.to_bytes(1, "big") + seq.to_bytes(2, "big")
        extended = cache.put(seq, data, 0.0)
        stored[extended] = data
    for ext, data in stored.items():
        expected = data if extended - ext < capacity else None
        assert cache.get(ext & 0xFFFF, 1.0) == expected
