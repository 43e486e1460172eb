"""The RTCP a packet-forwarding sender needs on top of `aiortc.rtp`.

aiortc already parses and serialises compound RTCP (`RtcpPacket.parse`, `RtcpRtpfbPacket` for
generic NACK, `RtcpPsfbPacket` for PLI/FIR/REMB, `RtcpSrPacket`, `RtcpRrPacket`, SDES, BYE);
this module only adds what its `RTCRtpSender` keeps private or gets subtly wrong for our use:

- `nack_sequence_numbers()`: aiortc expands each PID/BLP pair into ``pid + n + 1`` without the
  16-bit wrap (a NACK for 65535 and 0 reads as [65535, 65536]) and parses any RTPFB format as a
  NACK (transport-wide CC feedback, FMT 15, comes out as nonsense "lost" numbers).
- `SenderCounters`: one subscriber stream's packet and octet counts (RFC 3550 6.4.1: octets are
  payload bytes, without header and padding), turned into an `RtcpSrPacket` with an NTP/RTP
  timestamp pair, and the round-trip time from a receiver report block answering it.
"""

from __future__ import annotations

from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    RtcpReceiverInfo,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
)

_U32 = 0xFFFFFFFF


def nack_sequence_numbers(packet: RtcpRtpfbPacket) -> list[int]:
    """The sequence numbers a generic NACK asks for, mod 2^16, in order, without repeats.

    Other RTPFB formats (e.g. transport-wide congestion control feedback) give [].
    """
    if packet.fmt != RTCP_RTPFB_NACK:
        return []
    return list(dict.fromkeys(lost & 0xFFFF for lost in packet.lost))


class SenderCounters:
    """What one outgoing stream has sent, for its RTCP sender reports.

    Counters are plain attributes so a fan-out loop can bump them inline
    (``counters.packets += 1; counters.octets += payload_size``) or call `sent()`.
    """

    __slots__ = ("last_report_ntp", "octets", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.octets = 0
        #: NTP timestamp (64-bit) of the last sender report built, 0 before the first
        self.last_report_ntp = 0

    def sent(self, payload_size: int) -> None:
        self.packets += 1
        self.octets += payload_size

    def sender_report(
        self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int
    ) -> RtcpSrPacket:
        """An SR for `ssrc` pairing the wall-clock `ntp_timestamp` (64-bit NTP, e.g.
        `aiortc.clock.current_ntp_time()`) with the stream's `rtp_timestamp` at the same moment
        (`StreamOffsets.rtp_timestamp(now)`)."""
        self.last_report_ntp = ntp_timestamp
        return RtcpSrPacket(
            ssrc=ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp_timestamp,
                rtp_timestamp=rtp_timestamp & _U32,
                packet_count=self.packets & _U32,
                octet_count=self.octets & _U32,
            ),
        )

    @staticmethod
    def round_trip_time(report: RtcpReceiverInfo, arrival_ntp: int) -> float | None:
        """Seconds, from a report block received at `arrival_ntp` (RFC 3550 6.4.1, A.8).

        None if the receiver has not seen a sender report yet (LSR 0) or the clocks disagree.
        """
        if report.lsr == 0:
            return None
        arrival = (arrival_ntp >> 16) & _U32  # middle 32 bits, 1/65536 s
        rtt = (arrival - report.lsr - report.dlsr) & _U32
        if rtt >= 0x80000000:
            return None
        return rtt / 65536
