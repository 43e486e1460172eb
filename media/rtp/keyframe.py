"""Frame-start and keyframe detection on single RTP payloads, without a decoder.

`KeyframeDetector(mime_type).inspect(data, start, end)` looks at one payload
(``data[start:end]``, e.g. an `RtpHeader`'s ``data, payload_start, payload_end``) and returns a
bit set of:

- `FRAME_START`: the packet begins a frame (a picture; for H.264/H.265 its first NAL unit can
  begin an access unit: parameter sets, AUD, SEI, or the first slice of a picture).
- `KEYFRAME`: the packet begins a frame a decoder can start from. Forwarding from this packet on
  gives a decodable stream; it is what a subscriber that skipped ahead waits for.
- `PARAMETER_SETS`: the packet carries decoder configuration (H.264 SPS/PPS, H.265 VPS/SPS/PPS,
  AV1 sequence header).

Per codec (payload formats):

- VP8 (RFC 7741): start = S bit with partition index 0; key = the VP8 payload header's P bit is 0
  and the key frame start code 9d 01 2a follows.
- VP9 (RFC 9628): start = B bit on spatial layer 0; key = additionally P bit 0 (and no inter-layer
  dependency), confirmed by the uncompressed frame header (frame_type KEY_FRAME, sync code).
- H.264 (RFC 6184): single NAL units, STAP-A/STAP-B and FU-A/FU-B (start fragments only); key =
  an IDR slice beginning a picture, or an SPS (WebRTC senders put SPS/PPS in front of every IDR,
  so the SPS packet is where the keyframe's access unit starts). MTAPs (interleaved mode, unused
  in WebRTC) give 0.
- H.265 (RFC 7798): single NAL units, APs and FUs, without DONL (sprop-max-don-diff 0, as in
  WebRTC); key = an IRAP slice (BLA/IDR/CRA, types 16-23) beginning a picture, or a VPS/SPS.
  PACI packets give 0.
- AV1 (AOM RTP payload format 1.0): nothing starts in a packet whose first element continues a
  fragment (Z); key = N bit (first packet of a coded video sequence), or, for senders that do not
  set N, a sequence header OBU followed in the packet by a frame whose header says KEY_FRAME.
- audio (any ``audio/*``): every non-empty packet is a frame start and a keyframe.
- anything else (unknown video codecs, RTX, RED, FEC): 0 for every packet, and the detector's
  `exact` is False, so callers know they cannot skip to a keyframe on that track and must forward
  every packet instead.

A keyframe packet always has FRAME_START too. Truncated or malformed payloads give 0 or
FRAME_START, never KEYFRAME.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

FRAME_START: Final = 1
KEYFRAME: Final = 2
PARAMETER_SETS: Final = 4

_KEY: Final = FRAME_START | KEYFRAME

Inspector = Callable[[bytes, int, int], int]


def inspect_vp8(data: bytes, pos: int, end: int) -> int:
    if pos >= end:
        return 0
    first = data[pos]
    if first & 0x17 != 0x10:  # S bit set, partition index 0
        return 0
    pos += 1
    if first & 0x80:  # X: extended control bits
        if pos >= end:
            return 0
        ext = data[pos]
        pos += 1
        if ext & 0x80:  # I: PictureID, 7 or 15 bits (M bit)
            if pos >= end:
                return 0
            pos += 2 if data[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T and/or K: TID/Y/KEYIDX byte
            pos += 1
    if pos >= end:
        return 0
    if data[pos] & 0x01:  # P bit of the VP8 frame tag: inter frame
        return FRAME_START
    if (
        end - pos >= 6
        and data[pos + 3] == 0x9D
        and data[pos + 4] == 0x01
        and data[pos + 5] == 0x2A
    ):
        return _KEY
    return FRAME_START


def _skip_vp9_scalability_structure(data: bytes, pos: int, end: int) -> int:
    """Offset after the SS (RFC 9628 4.2.1), or -1 if it is truncated."""
    if pos >= end:
        return -1
    ss = data[pos]
    pos += 1
    if ss & 0x10:  # Y: a width and height per spatial layer
        pos += 4 * ((ss >> 5) + 1)
    if ss & 0x08:  # G: picture group description
        if pos >= end:
            return -1
        groups = data[pos]
        pos += 1
        for _ in range(groups):
            if pos >= end:
                return -1
            pos += 1 + ((data[pos] >> 2) & 0x03)
    return pos if pos <= end else -1


def _vp9_frame_is_key(data: bytes, pos: int, end: int) -> bool:
    """The VP9 uncompressed header (VP9 bitstream spec 6.2) says KEY_FRAME with its sync code."""
    if end - pos < 5:
        return False
    bits = int.from_bytes(data[pos : pos + 5], "big")  # 40 bits, MSB first
    if bits >> 38 != 2:  # frame_marker
        return False
    profile = ((bits >> 37) & 1) | (((bits >> 36) & 1) << 1)
    at = 36 - (profile == 3)  # bits left after marker, profile (and reserved_zero)
    if (bits >> (at - 1)) & 1:  # show_existing_frame
        return False
    if (bits >> (at - 2)) & 1:  # frame_type: 0 = KEY_FRAME
        return False
    # show_frame, error_resilient_mode, then frame_sync_code 0x49 0x83 0x42
    return (bits >> (at - 28)) & 0xFFFFFF == 0x498342


def inspect_vp9(data: bytes, pos: int, end: int) -> int:
    if pos >= end:
        return 0
    first = data[pos]  # I P L F B E V Z
    if not first & 0x08:  # B: start of a layer frame
        return 0
    pos += 1
    if first & 0x80:  # I: picture ID, 7 or 15 bits
        if pos >= end:
            return 0
        pos += 2 if data[pos] & 0x80 else 1
    if first & 0x20:  # L: layer indices
        if pos >= end:
            return 0
        layers = data[pos]
        if layers & 0x0E:  # spatial layer above 0: not the start of a picture
            return 0
        if layers & 0x01:  # D: depends on a lower spatial layer
            return FRAME_START
        pos += 1 if first & 0x10 else 2  # non-flexible mode adds TL0PICIDX
    if first & 0x40:  # P: inter-picture predicted
        return FRAME_START
    if first & 0x02:  # V: scalability structure
        pos = _skip_vp9_scalability_structure(data, pos, end)
        if pos < 0:
            return FRAME_START
    return _KEY if _vp9_frame_is_key(data, pos, end) else FRAME_START


# H.264 NAL unit types (ITU-T H.264 table 7-1); -1: a slice, resolved by first_mb_in_slice.
_H264_TYPES: Final = {
    1: -1,  # non-IDR slice
    5: -1,  # IDR slice
    6: FRAME_START,  # SEI
    7: _KEY | PARAMETER_SETS,  # SPS
    8: FRAME_START | PARAMETER_SETS,  # PPS
    9: FRAME_START,  # access unit delimiter
    13: PARAMETER_SETS,  # SPS extension
    14: FRAME_START,  # prefix NAL unit
    15: FRAME_START | PARAMETER_SETS,  # subset SPS
}
_H264_FLAGS: Final = tuple(_H264_TYPES.get(nal_type, 0) for nal_type in range(32))


def _h264_nal(nal_type: int, data: bytes, body: int, end: int) -> int:
    """Flags for one NAL unit whose header is followed by ``data[body:end]``."""
    flags = _H264_FLAGS[nal_type]
    if flags >= 0:
        return flags
    # A slice: first_mb_in_slice is ue(v); it is 0 (a new picture) iff its first bit is 1.
    if body >= end or not data[body] & 0x80:
        return 0
    return _KEY if nal_type == 5 else FRAME_START


def _h264_aggregate(data: bytes, pos: int, end: int) -> int:
    flags = 0
    while pos + 2 < end:
        size = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if size == 0 or pos + size > end:
            break
        flags |= _h264_nal(data[pos] & 0x1F, data, pos + 1, pos + size)
        pos += size
    return flags


def inspect_h264(data: bytes, pos: int, end: int) -> int:
    if pos >= end:
        return 0
    nal_type = data[pos] & 0x1F
    if nal_type <= 23:
        return _h264_nal(nal_type, data, pos + 1, end) if nal_type else 0
    if nal_type == 24:  # STAP-A
        return _h264_aggregate(data, pos + 1, end)
    if nal_type == 25:  # STAP-B: 16-bit DON first
        return _h264_aggregate(data, pos + 3, end)
    if nal_type == 28 or nal_type == 29:  # FU-A, FU-B (FU-B adds a DON)
        if pos + 1 >= end:
            return 0
        header = data[pos + 1]
        if not header & 0x80:  # S: first fragment
            return 0
        return _h264_nal(header & 0x1F, data, pos + (2 if nal_type == 28 else 4), end)
    return 0  # MTAP16/24 and reserved types


def _h265_nal(nal_type: int, data: bytes, body: int, end: int) -> int:
    """Flags for one H.265 NAL unit whose 2-byte header is followed by ``data[body:end]``."""
    if nal_type < 32:  # VCL: first_slice_segment_in_pic_flag is the first bit
        if body >= end or not data[body] & 0x80:
            return 0
        return _KEY if 16 <= nal_type <= 23 else FRAME_START
    if nal_type == 32 or nal_type == 33:  # VPS, SPS
        return _KEY | PARAMETER_SETS
    if nal_type == 34:  # PPS
        return FRAME_START | PARAMETER_SETS
    if nal_type == 35 or nal_type == 39:  # AUD, prefix SEI
        return FRAME_START
    return 0


def inspect_h265(data: bytes, pos: int, end: int) -> int:
    if pos + 1 >= end:
        return 0
    nal_type = (data[pos] >> 1) & 0x3F
    if nal_type < 48:
        return _h265_nal(nal_type, data, pos + 2, end)
    if nal_type == 48:  # aggregation packet
        flags = 0
        pos += 2
        while pos + 2 < end:
            size = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if size < 2 or pos + size > end:
                break
            flags |= _h265_nal((data[pos] >> 1) & 0x3F, data, pos + 2, pos + size)
            pos += size
        return flags
    if nal_type == 49:  # fragmentation unit
        if pos + 2 >= end:
            return 0
        header = data[pos + 2]
        if not header & 0x80:  # S: first fragment
            return 0
        return _h265_nal(header & 0x3F, data, pos + 3, end)
    return 0  # PACI and reserved types


_AV1_SEQUENCE_HEADER: Final = 1
_AV1_FRAME_HEADER: Final = 3
_AV1_FRAME: Final = 6
_AV1_FRAME_STARTS: Final = frozenset({1, 2, 3, 6})  # sequence header, TD, frame header, frame


def _leb128(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """``(value, offset after it)``; offset -1 if truncated or longer than 8 bytes."""
    value = 0
    shift = 0
    while pos < end and shift < 56:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return 0, -1


def _av1_obus(data: bytes, pos: int, end: int, count: int) -> list[tuple[int, int, int]]:
    """``(obu type, offset of the OBU payload, end)`` for the whole OBU elements of a packet."""
    obus: list[tuple[int, int, int]] = []
    index = 0
    while pos < end:
        index += 1
        if count == 0 or index < count:
            size = data[pos]
            pos += 1
            if size & 0x80:  # LEB128: two bytes inline (sizes below 16 kB), more in a call
                if pos < end and data[pos] < 0x80:
                    size = (size & 0x7F) | (data[pos] << 7)
                    pos += 1
                else:
                    size, pos = _leb128(data, pos - 1, end)
                    if pos < 0:
                        break
            element_end = pos + size
        else:
            element_end = end  # the last of W elements has no length field
        if element_end > end or pos >= element_end:
            break
        header = data[pos]
        body = pos + (2 if header & 0x04 else 1)  # obu_extension_flag
        if header & 0x02:  # obu_has_size_field: skip obu_size
            _size, body = _leb128(data, body, element_end)
            if body < 0:
                break
        obus.append(((header >> 3) & 0x0F, body, element_end))
        pos = element_end
    return obus


def _av1_key_after_sequence_header(data: bytes, obus: list[tuple[int, int, int]]) -> bool:
    """A sequence header, then a frame (header) OBU with show_existing_frame 0 and KEY_FRAME."""
    reduced_still_picture = None
    for obu_type, body, end in obus:
        if obu_type == _AV1_SEQUENCE_HEADER and body < end:
            reduced_still_picture = bool(data[body] & 0x08)  # seq_profile(3) still_picture(1)
        elif obu_type in (_AV1_FRAME_HEADER, _AV1_FRAME) and reduced_still_picture is not None:
            if reduced_still_picture:
                return True  # every frame is a key frame
            if body >= end:
                return False
            # show_existing_frame f(1), frame_type f(2): 0 = KEY_FRAME
            return data[body] & 0xE0 == 0
    return False


def inspect_av1(data: bytes, pos: int, end: int) -> int:
    if pos >= end:
        return 0
    aggregation = data[pos]  # Z Y W W N - - -
    if aggregation & 0x80:  # Z: the first element continues an OBU from the previous packet
        return 0
    obus = _av1_obus(data, pos + 1, end, (aggregation >> 4) & 0x03)
    if not obus:
        return 0
    flags = FRAME_START if obus[0][0] in _AV1_FRAME_STARTS else 0
    for obu_type, _body, _end in obus:
        if obu_type == _AV1_SEQUENCE_HEADER:
            flags |= PARAMETER_SETS
            if aggregation & 0x08 or _av1_key_after_sequence_header(data, obus):
                flags |= _KEY
            return flags
    if aggregation & 0x08:  # N: first packet of a coded video sequence
        flags |= _KEY
    return flags


def inspect_audio(data: bytes, pos: int, end: int) -> int:
    return _KEY if pos < end else 0


def inspect_unknown(data: bytes, pos: int, end: int) -> int:
    return 0


_INSPECTORS: Final[dict[str, Inspector]] = {
    "video/vp8": inspect_vp8,
    "video/vp9": inspect_vp9,
    "video/h264": inspect_h264,
    "video/h265": inspect_h265,
    "video/hevc": inspect_h265,
    "video/av1": inspect_av1,
}


class KeyframeDetector:
    """Picks the payload inspector for one codec, by MIME type (case-insensitive)."""

    __slots__ = ("exact", "inspect", "mime_type")

    def __init__(self, mime_type: str) -> None:
        self.mime_type = mime_type.lower()
        inspect = _INSPECTORS.get(self.mime_type)
        if inspect is None:
            audio = self.mime_type.startswith("audio/") and self.mime_type not in (
                "audio/rtx",
                "audio/ulpfec",
                "audio/flexfec",
            )
            inspect = inspect_audio if audio else inspect_unknown
        #: False when the codec is unknown: `inspect` then always answers 0.
        self.exact = inspect is not inspect_unknown
        #: ``inspect(data, start, end) -> flags`` for the payload ``data[start:end]``.
        self.inspect: Inspector = inspect

    def __repr__(self) -> str:
        return f"KeyframeDetector({self.mime_type!r})"

    def is_keyframe(self, payload: bytes) -> bool:
        return bool(self.inspect(payload, 0, len(payload)) & KEYFRAME)
