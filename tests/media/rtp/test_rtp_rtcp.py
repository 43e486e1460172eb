"""media.rtp.rtcp: NACK expansion fixes and sender reports, through aiortc's RTCP wire format."""

from __future__ import annotations

from aiortc import clock
from aiortc.rtp import RtcpPacket, RtcpReceiverInfo, RtcpRrPacket, RtcpRtpfbPacket, RtcpSrPacket

from media.rtp.rtcp import SenderCounters, nack_sequence_numbers
from media.rtp.sequence import StreamOffsets


def parse_one(data: bytes) -> object:
    [packet] = RtcpPacket.parse(data)
    return packet


def test_nack_across_the_wrap() -> None:
    # PID 65534 with BLP bits for 65535, 0 and 1: aiortc reads 65535, 65536, 65537
    fci = (65534).to_bytes(2, "big") + (0b111).to_bytes(2, "big")
    wire = bytes([0x81, 205, 0, 3]) + (1).to_bytes(4, "big") + (2).to_bytes(4, "big") + fci
    packet = parse_one(wire)
    assert isinstance(packet, RtcpRtpfbPacket)
    assert packet.lost == [65534, 65535, 65536, 65537]  # aiortc's unwrapped numbers
    assert nack_sequence_numbers(packet) == [65534, 65535, 0, 1]


def test_nack_repeats_dropped_and_other_formats_ignored() -> None:
    packet = RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=2, lost=[5, 5, 6, 70000 - 65536])
    assert nack_sequence_numbers(packet) == [5, 6, 4464]
    # transport-wide CC feedback (FMT 15) parses as an RTPFB "NACK" in aiortc
    twcc = bytes([0x8F, 205, 0, 4]) + bytes(range(16))
    parsed = parse_one(twcc)
    assert isinstance(parsed, RtcpRtpfbPacket) and parsed.lost
    assert nack_sequence_numbers(parsed) == []


def test_sender_report_from_own_counters() -> None:
    counters = SenderCounters()
    payload_sizes = [1180, 1180, 400]
    for size in payload_sizes[:2]:
        counters.sent(size)
    counters.packets += 1  # inline bump, as a fan-out loop would
    counters.octets += payload_sizes[2]
    stream = StreamOffsets(90000, initial_sequence=1, initial_timestamp=4000)
    stream.map(7, 1, 0, now=100.0)
    ntp = clock.current_ntp_time()
    report = counters.sender_report(ssrc=0xDEADBEEF, ntp_timestamp=ntp,
                                    rtp_timestamp=stream.rtp_timestamp(100.5))
    parsed = parse_one(bytes(report))
    assert isinstance(parsed, RtcpSrPacket)
    assert parsed.ssrc == 0xDEADBEEF
    assert parsed.sender_info.packet_count == 3
    assert parsed.sender_info.octet_count == sum(payload_sizes)
    assert parsed.sender_info.rtp_timestamp == 4000 + 45000
    assert parsed.sender_info.ntp_timestamp == ntp
    assert counters.last_report_ntp == ntp


def test_counters_wrap_at_32_bits() -> None:
    counters = SenderCounters()
    counters.packets = 2**32 + 5
    counters.octets = 2**33 + 7
    report = counters.sender_report(1, ntp_timestamp=0, rtp_timestamp=2**32 + 9)
    assert (report.sender_info.packet_count, report.sender_info.octet_count,
            report.sender_info.rtp_timestamp) == (5, 7, 9)


def test_round_trip_time_from_a_receiver_report() -> None:
    counters = SenderCounters()
    sent_at = (3_900_000_000 << 32) | (1 << 31)  # .5 s
    counters.sender_report(1, ntp_timestamp=sent_at, rtp_timestamp=0)
    lsr = (counters.last_report_ntp >> 16) & 0xFFFFFFFF
    # the receiver held the SR 0.25 s before answering; the answer arrives 0.3 s after sending
    block = RtcpReceiverInfo(ssrc=1, fraction_lost=0, packets_lost=0, highest_sequence=0,
                             jitter=0, lsr=lsr, dlsr=int(0.25 * 65536))
    rr = parse_one(bytes(RtcpRrPacket(ssrc=9, reports=[block])))
    assert isinstance(rr, RtcpRrPacket)
    arrival = sent_at + int(0.3 * (1 << 32))
    rtt = SenderCounters.round_trip_time(rr.reports[0], arrival)
    assert rtt is not None and abs(rtt - 0.05) < 1e-3
    no_sr_yet = RtcpReceiverInfo(1, 0, 0, 0, 0, lsr=0, dlsr=0)
    assert SenderCounters.round_trip_time(no_sr_yet, arrival) is None
    assert SenderCounters.round_trip_time(rr.reports[0], sent_at) is None  # clocks disagree
