"""Real encoded media, packetized into RTP payloads, for the media.rtp tests and benchmark.

Frames come from FFmpeg's testsrc2 pattern through PyAV's encoders (libvpx VP8/VP9, libx264,
libx265, SVT-AV1, libopus). VP8, H.264 and Opus are packetized by aiortc's own packetizers
(`Vp8Encoder.pack`, `H264Encoder.pack`, `OpusEncoder.encode`); aiortc has none for VP9, H.265 and
AV1, so those are packetized here, following RFC 9628, RFC 7798 and the AV1 RTP specification.
Whether a frame is a keyframe comes from the encoder (`av.Packet.is_keyframe`), never from the
code under test.
"""

from __future__ import annotations

import fractions
import functools
import math
from dataclasses import dataclass
from typing import Any

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

WIDTH, HEIGHT, FPS = 320, 240, 30
TIME_BASE = fractions.Fraction(1, FPS)
MTU_PAYLOAD = 1200


@dataclass(frozen=True)
class Frame:
    keyframe: bool
    payloads: list[bytes]


@functools.cache
def source_frames(count: int) -> list[av.VideoFrame]:
    container = av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi")
    frames = []
    for frame in container.decode(video=0):
        frames.append(frame.reformat(format="yuv420p"))
        if len(frames) == count:
            break
    container.close()
    return frames


@functools.cache
def encode(encoder: str, bitrate: int, options: tuple[tuple[str, str], ...], count: int = 25,
           gop: int = 10) -> list[tuple[bytes, bool]]:
    """``(access unit, is keyframe)`` per encoded frame."""
    context: Any = av.CodecContext.create(encoder, "w")
    context.width, context.height, context.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    context.time_base = TIME_BASE
    context.framerate = FPS
    context.gop_size = gop
    context.bit_rate = bitrate
    context.options = dict(options)
    out: list[tuple[bytes, bool]] = []
    for index, frame in enumerate(source_frames(count)):
        frame.pts = index
        frame.time_base = TIME_BASE
        frame.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose (gop)
        out.extend((bytes(packet), packet.is_keyframe) for packet in context.encode(frame))
    out.extend((bytes(packet), packet.is_keyframe) for packet in context.encode(None))
    return out


def _packet(data: bytes, index: int) -> av.Packet[Any]:
    packet = av.Packet(data)
    packet.pts = index
    packet.time_base = TIME_BASE
    return packet


def vp8_frames() -> list[Frame]:
    packer = Vp8Encoder()
    units = encode("libvpx", 600_000, (("deadline", "realtime"), ("cpu-used", "8")))
    return [
        Frame(key, packer.pack(_packet(data, i))[0]) for i, (data, key) in enumerate(units)
    ]


def h264_frames() -> list[Frame]:
    packer = H264Encoder()
    units = encode("libx264", 500_000, (("preset", "ultrafast"), ("tune", "zerolatency")))
    return [
        Frame(key, packer.pack(_packet(data, i))[0]) for i, (data, key) in enumerate(units)
    ]


def opus_payloads(count: int = 10) -> list[bytes]:
    encoder = OpusEncoder()
    payloads: list[bytes] = []
    for index in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples = b"".join(
            int(8000 * math.sin(2 * math.pi * 440 * (index * 960 + n) / 48000)).to_bytes(
                2, "little", signed=True
            ) * 2
            for n in range(960)
        )
        frame.planes[0].update(samples)
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads.extend(encoder.encode(frame)[0])
    return payloads


def vp9_frames() -> list[Frame]:
    """Non-flexible mode, 15-bit picture ids, a scalability structure on keyframes."""
    units = encode("libvpx-vp9", 500_000, (("deadline", "realtime"), ("cpu-used", "8")))
    frames = []
    for picture_id, (data, key) in enumerate(units):
        chunks = [data[i : i + MTU_PAYLOAD] for i in range(0, len(data), MTU_PAYLOAD)]
        payloads = []
        for n, chunk in enumerate(chunks):
            first, last = n == 0, n == len(chunks) - 1
            descriptor = 0x80 | (0 if key else 0x40) | (0x08 if first else 0)
            descriptor |= (0x04 if last else 0) | (0x02 if key and first else 0)
            head = bytes((descriptor, 0x80 | (picture_id >> 8), picture_id & 0xFF))
            if key and first:  # SS: one spatial layer with its resolution, no group
                head += bytes((0x10,)) + WIDTH.to_bytes(2, "big") + HEIGHT.to_bytes(2, "big")
            payloads.append(head + chunk)
        frames.append(Frame(key, payloads))
    return frames


def annexb_nal_units(data: bytes) -> list[bytes]:
    return list(H264Encoder._split_bitstream(data))


def h265_frames() -> list[Frame]:
    """Single NAL units, aggregation packets for small runs, FUs above the MTU (no DONL)."""
    units = encode(
        "libx265",
        500_000,
        (("preset", "ultrafast"), ("tune", "zerolatency"), ("x265-params", "log-level=none")),
    )
    frames = []
    for data, key in units:
        payloads: list[bytes] = []
        pending: list[bytes] = []

        def flush(pending: list[bytes] = pending, payloads: list[bytes] = payloads) -> None:
            if len(pending) == 1:
                payloads.append(pending[0])
            elif pending:
                header = bytes((48 << 1, 1))
                payloads.append(
                    header + b"".join(len(n).to_bytes(2, "big") + n for n in pending)
                )
            pending.clear()

        for nal in annexb_nal_units(data):
            if len(nal) > MTU_PAYLOAD:
                flush()
                nal_type = (nal[0] >> 1) & 0x3F
                header = bytes(((nal[0] & 0x81) | (49 << 1), nal[1]))
                body = nal[2:]
                chunks = [body[i : i + MTU_PAYLOAD] for i in range(0, len(body), MTU_PAYLOAD)]
                for n, chunk in enumerate(chunks):
                    fu = nal_type | (0x80 if n == 0 else 0) | (0x40 if n == len(chunks) - 1 else 0)
                    payloads.append(header + bytes((fu,)) + chunk)
            else:
                if sum(len(n) + 2 for n in pending) + len(nal) + 4 > MTU_PAYLOAD:
                    flush()
                pending.append(nal)
        flush()
        frames.append(Frame(key, payloads))
    return frames


def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            break
    return value, pos


def av1_obus(data: bytes) -> list[bytes]:
    """The OBUs of a low-overhead bitstream temporal unit, without temporal delimiters, each
    re-headed without obu_size (as the RTP format recommends)."""
    obus = []
    pos = 0
    while pos < len(data):
        header = data[pos]
        extension = 2 if header & 0x04 else 1
        size, body = read_leb128(data, pos + extension)
        obu_type = (header >> 3) & 0x0F
        if obu_type != 2:
            obus.append(bytes((header & ~0x02,)) + data[pos + 1 : pos + extension]
                        + data[body : body + size])
        pos = body + size
    return obus


def av1_frames(set_n_bit: bool = True) -> list[Frame]:
    """Every OBU element with a length field (W = 0); OBUs larger than a packet fragment (Z/Y).

    `set_n_bit` False imitates a sender that never sets N (the detector then needs the
    sequence header and frame header).
    """
    options = (("preset", "10"), ("svtav1-params", "pred-struct=1:rc=2"))  # low delay, CBR
    units = encode("libsvtav1", 300_000, options)
    frames = []
    for data, key in units:
        obus = av1_obus(data)
        starts_sequence = set_n_bit and key and any((o[0] >> 3) & 0x0F == 1 for o in obus)
        payloads: list[bytes] = []
        body = bytearray()
        continues = False  # the packet being built starts with a fragment (Z)
        for obu in obus:
            rest = obu
            while rest:
                room = MTU_PAYLOAD - len(body) - 4
                if room <= 16:
                    payloads.append(_av1_packet(body, continues, False, starts_sequence, payloads))
                    body, continues = bytearray(), False
                    continue
                piece, rest = rest[:room], rest[room:]
                body += leb128(len(piece)) + piece
                if rest:  # fragment continues in the next packet
                    payloads.append(_av1_packet(body, continues, True, starts_sequence, payloads))
                    body, continues = bytearray(), True
        if body:
            payloads.append(_av1_packet(body, continues, False, starts_sequence, payloads))
        frames.append(Frame(key, payloads))
    return frames


def _av1_packet(
    body: bytearray, z: bool, y: bool, new_sequence: bool, before: list[bytes]
) -> bytes:
    n = new_sequence and not before  # N only on the first packet of the sequence
    aggregation = (0x80 if z else 0) | (0x40 if y else 0) | (0x08 if n else 0)
    return bytes((aggregation,)) + bytes(body)


VIDEO_EXTENSIONS = HeaderExtensionsMap()
VIDEO_EXTENSIONS.configure(
    RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(
                id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            ),
        ]
    )
)


def rtp_packets(payloads: list[bytes], *, ssrc: int = 0x1234ABCD, payload_type: int = 96,
                first_sequence: int = 1000, timestamp: int = 90000, mid: str | None = "0",
                abs_send_time: int | None = 0x123456) -> list[bytes]:
    """Serialized by aiortc's `RtpPacket`, as aiortc's sender does (mid + abs-send-time)."""
    packets = []
    for index, payload in enumerate(payloads):
        packet = RtpPacket(
            payload_type=payload_type,
            marker=int(index == len(payloads) - 1),
            sequence_number=(first_sequence + index) & 0xFFFF,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=payload,
        )
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = abs_send_time
        packets.append(packet.serialize(VIDEO_EXTENSIONS))
    return packets
