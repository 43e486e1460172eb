"""Packet-level forwarding building blocks: RTP header views and rewriting, payload keyframe
detection, per-subscriber sequence/timestamp continuity, the NACK packet cache and sender RTCP.

Pure Python, no event loop: meant to be driven from one synchronous loop per incoming packet::

    header = RtpHeader(data)                      # once per packet (after SRTP unprotect)
    flags = detector.inspect(data, header.payload_start, header.payload_end)
    cache.put(header.sequence_number, data, now)
    for sub in subscribers:                       # no await inside
        mapped = sub.offsets.map(header.ssrc, header.sequence_number, header.timestamp, now)
        if mapped is not None:
            packet = header.rewrite(sub.ssrc, *mapped, sub.payload_type, remap=sub.remap)
            sub.send(sub.srtp.protect(packet))
"""

from .cache import PacketCache
from .header import ExtensionRemap, RtpHeader
from .keyframe import FRAME_START, KEYFRAME, PARAMETER_SETS, KeyframeDetector
from .rtcp import SenderCounters, nack_sequence_numbers
from .sequence import StreamOffsets

__all__ = [
    "FRAME_START",
    "KEYFRAME",
    "PARAMETER_SETS",
    "ExtensionRemap",
    "KeyframeDetector",
    "PacketCache",
    "RtpHeader",
    "SenderCounters",
    "StreamOffsets",
    "nack_sequence_numbers",
]
