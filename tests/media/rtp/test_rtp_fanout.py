"""The media.rtp blocks in the loop they are built for: real VP8 RTP from aiortc's packetizer,
fanned out to three subscribers (one skipping to a keyframe, one joining late), SRTP-protected with
pylibsrtp, sent over UDP on 127.0.0.1, and read back the way a subscriber's aiortc would: SRTP
unprotect, `RtpPacket.parse` with the subscriber's extension ids, VP8 depayloading. A publisher
switch happens mid-stream and a lost packet is repaired through NACK -> cache -> RTX."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pylibsrtp
import pytest
from aiortc.codecs.vpx import vp8_depayload
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtcpRtpfbPacket, RtpPacket, unwrap_rtx

from media.rtp import (
    KEYFRAME,
    ExtensionRemap,
    KeyframeDetector,
    PacketCache,
    RtpHeader,
    SenderCounters,
    StreamOffsets,
    nack_sequence_numbers,
)
from media.rtp.header import URI_MID
from tests.media.rtp.rtp_samples import rtp_packets, vp8_frames

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
PUBLISHER_EXTENSIONS = {URI_MID: 1, ABS_SEND_TIME: 3}  # as aiortc negotiates for video


def srtp_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    key = os.urandom(30)
    tx = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    tx.allow_repeat_tx = True
    rx = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
    return pylibsrtp.Session(tx), pylibsrtp.Session(rx)


@dataclass
class Subscriber:
    name: str
    ssrc: int
    payload_type: int
    extensions: dict[str, int]
    join_frame: int = 0  # first source frame it may get (then waits for a keyframe)
    skip_frames: range = range(0)  # frames it falls behind on (then waits for a keyframe)
    rtx: tuple[int, int] | None = None  # (payload type, ssrc)
    offsets: StreamOffsets = field(init=False)
    remap: ExtensionRemap = field(init=False)
    counters: SenderCounters = field(default_factory=SenderCounters)
    waiting: bool = True
    rtx_sequence: int = 0

    def __post_init__(self) -> None:
        self.offsets = StreamOffsets(90000, initial_sequence=65530, initial_timestamp=1000)
        self.remap = ExtensionRemap.from_uris(PUBLISHER_EXTENSIONS, self.extensions)
        self.tx, self.rx = srtp_pair()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.address = self.sock.getsockname()


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    subs = [
        Subscriber("steady", 0x51, 96, {ABS_SEND_TIME: 2}, rtx=(97, 0x52)),
        Subscriber("slow", 0x61, 120, {URI_MID: 1, ABS_SEND_TIME: 3}, skip_frames=range(3, 8)),
        Subscriber("late", 0x71, 100, {URI_MID: 4}, join_frame=5),
    ]
    yield subs
    for sub in subs:
        sub.sock.close()


def publisher(ssrc: int, first_sequence: int, timestamp_base: int) -> list[tuple[int, bytes]]:
    """(frame index, RTP packet) for every packet of every frame, in send order."""
    packets = []
    sequence = first_sequence
    for index, frame in enumerate(vp8_frames()):
        for data in rtp_packets(frame.payloads, ssrc=ssrc, first_sequence=sequence,
                                timestamp=(timestamp_base + 3000 * index) & 0xFFFFFFFF):
            packets.append((index, data))
        sequence += len(frame.payloads)
    return packets


def receive(sub: Subscriber, count: int) -> list[RtpPacket]:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=uri) for uri, i in sub.extensions.items()
    ]))
    received = []
    for _ in range(count):
        data = sub.rx.unprotect(sub.sock.recv(2048))
        received.append(RtpPacket.parse(data, extensions))
    return received


def frames_of(packets: list[RtpPacket]) -> list[tuple[int, bytes]]:
    """(timestamp, depayloaded VP8 frame) in arrival order."""
    frames: list[tuple[int, bytes]] = []
    for packet in packets:
        if not frames or frames[-1][0] != packet.timestamp:
            frames.append((packet.timestamp, b""))
        frames[-1] = (packet.timestamp, frames[-1][1] + vp8_depayload(packet.payload))
    return frames


def test_fan_out_over_srtp_and_udp(subscribers: list[Subscriber]) -> None:
    detector = KeyframeDetector("video/VP8")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    encoded = vp8_frames()
    keyframes = [i for i, f in enumerate(encoded) if f.keyframe]
    assert keyframes[:3] == [0, 10, 20]
    # publisher A for 15 frames, then publisher B takes over from its frame 20 (a keyframe)
    stream = [(0xA, i, d) for i, d in publisher(0xA, 65500, 4_000_000_000) if i < 15]
    stream += [(0xB, i, d) for i, d in publisher(0xB, 100, 7) if i >= 20]
    caches = {0xA: PacketCache(max_age=5.0), 0xB: PacketCache(max_age=5.0)}
    sent: dict[str, list[tuple[int, int]]] = {sub.name: [] for sub in subscribers}
    source_packets: dict[str, dict[int, bytes]] = {sub.name: {} for sub in subscribers}

    try:
        previous_ssrc = None
        for publisher_ssrc, index, data in stream:
            now = index / 30 + (0.2 if publisher_ssrc == 0xB else 0.0)
            header = RtpHeader(data)
            flags = detector.inspect(data, header.payload_start, header.payload_end)
            caches[publisher_ssrc].put(header.sequence_number, data, now)
            switched = previous_ssrc is not None and publisher_ssrc != previous_ssrc
            previous_ssrc = publisher_ssrc
            for sub in subscribers:  # the synchronous per-packet loop: no await
                if index < sub.join_frame or index in sub.skip_frames:
                    sub.waiting = True
                    continue
                resync = False
                if sub.waiting:
                    if not flags & KEYFRAME:
                        continue
                    sub.waiting = False
                    resync = True
                mapped = sub.offsets.map(header.ssrc, header.sequence_number, header.timestamp,
                                         now, resync=resync or switched)
                assert mapped is not None
                out = header.rewrite(sub.ssrc, mapped[0], mapped[1], sub.payload_type,
                                     remap=sub.remap)
                sender.sendto(sub.tx.protect(out), sub.address)
                sub.counters.sent(header.payload_end - header.payload_start)
                if not sent[sub.name] or sent[sub.name][-1] != (publisher_ssrc, index):
                    sent[sub.name].append((publisher_ssrc, index))
                source_packets[sub.name][mapped[0]] = data

        for sub in subscribers:
            received = receive(sub, sub.counters.packets)
            # one SSRC, its payload type, sequence numbers +1 each (across the wrap, the skip and
            # the publisher switch), timestamps never going back
            assert {p.ssrc for p in received} == {sub.ssrc}
            assert {p.payload_type for p in received} == {sub.payload_type}
            sequences = [p.sequence_number for p in received]
            assert sequences[0] == 65530 and 0 in sequences
            assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))
            # the extension the subscriber negotiated arrives under its own id; mid never does
            assert all(p.extensions.mid is None for p in received)
            if ABS_SEND_TIME in sub.extensions:
                assert all(p.extensions.abs_send_time == 0x123456 for p in received)
            # every frame it was sent is intact and complete, in order
            frames = frames_of(received)
            expected = [encoded[index] for _ssrc, index in sent[sub.name]]
            assert [f[1] for f in frames] == [
                b"".join(vp8_depayload(p) for p in frame.payloads) for frame in expected
            ]
            stamps = [f[0] for f in frames]
            assert all(0 < (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(stamps))
            assert expected[0].keyframe  # every subscriber starts on a keyframe

        indexes = {name: [i for _s, i in frames] for name, frames in sent.items()}
        assert indexes["steady"] == list(range(15)) + list(range(20, 25))
        assert indexes["slow"] == [0, 1, 2, 10, 11, 12, 13, 14, *range(20, 25)]
        assert indexes["late"] == [10, 11, 12, 13, 14, *range(20, 25)]

        # the steady subscriber lost two packets: it NACKs them, we answer over RTX from the cache
        steady = subscribers[0]
        lost_outputs = [2, 65533]  # aiortc's NACK serializer cannot go across the wrap
        nack = bytes(RtcpRtpfbPacket(fmt=1, ssrc=steady.ssrc, media_ssrc=steady.ssrc,
                                     lost=lost_outputs))
        [feedback] = RtcpPacket.parse(nack)
        assert isinstance(feedback, RtcpRtpfbPacket)
        for out_sequence in nack_sequence_numbers(feedback):
            source = steady.offsets.source_of(out_sequence)
            assert source is not None
            original = caches[source[0]].get(source[1], now)
            assert original == source_packets["steady"][out_sequence]
            header = RtpHeader(original)
            mapped = steady.offsets.map(header.ssrc, header.sequence_number, header.timestamp, now)
            assert mapped is not None and mapped[0] == out_sequence
            again = RtpHeader(header.rewrite(steady.ssrc, *mapped, steady.payload_type,
                                             remap=steady.remap))
            assert steady.rtx is not None
            rtx = again.wrap_rtx(steady.rtx[0], steady.rtx_sequence, steady.rtx[1])
            steady.rtx_sequence += 1
            sender.sendto(steady.tx.protect(rtx), steady.address)
            packet = RtpPacket.parse(steady.rx.unprotect(steady.sock.recv(2048)))
            assert (packet.ssrc, packet.payload_type) == (0x52, 97)
            repaired = unwrap_rtx(packet, payload_type=steady.payload_type, ssrc=steady.ssrc)
            assert repaired.sequence_number == out_sequence
            assert repaired.payload == bytes(header.payload)
    finally:
        sender.close()
