"""media.rtp.keyframe on real encoder output (VP8, VP9, H.264, H.265, AV1, Opus) and on hand-built
payloads for the branches encoders here do not produce."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp.keyframe import (
    FRAME_START,
    KEYFRAME,
    PARAMETER_SETS,
    KeyframeDetector,
    inspect_av1,
    inspect_h264,
    inspect_h265,
    inspect_vp8,
    inspect_vp9,
)
from tests.media.rtp import rtp_samples
from tests.media.rtp.rtp_samples import Frame, leb128

KEY = FRAME_START | KEYFRAME


def flags(mime: str, payload: bytes) -> int:
    return KeyframeDetector(mime).inspect(payload, 0, len(payload))


def check_real_stream(mime: str, frames: list[Frame], later_may_be_key: bool) -> None:
    """First packet of every frame starts it, and is a keyframe iff the encoder said so; no packet
    of a delta frame is a keyframe; later packets start nothing, except (H.26x) the first slice
    after the parameter sets."""
    keyframes = [f for f in frames if f.keyframe]
    assert len(keyframes) >= 3 and len(frames) - len(keyframes) >= 10
    assert any(len(f.payloads) > 2 for f in frames if not f.keyframe)  # middle fragments
    for frame in frames:
        found = [flags(mime, p) for p in frame.payloads]
        assert found[0] & FRAME_START
        assert bool(found[0] & KEYFRAME) == frame.keyframe, found
        if not frame.keyframe:
            assert not any(f & KEYFRAME for f in found), found
            assert not any(f & PARAMETER_SETS for f in found), found
        if not later_may_be_key:
            assert not any(f & FRAME_START for f in found[1:]), found


def test_vp8_from_aiortc_packetizer() -> None:
    check_real_stream("video/VP8", rtp_samples.vp8_frames(), later_may_be_key=False)


def test_vp9() -> None:
    check_real_stream("video/VP9", rtp_samples.vp9_frames(), later_may_be_key=False)


def test_av1_with_n_bit() -> None:
    frames = rtp_samples.av1_frames()
    check_real_stream("video/AV1", frames, later_may_be_key=False)
    assert all(flags("video/AV1", f.payloads[0]) & PARAMETER_SETS for f in frames if f.keyframe)


def test_av1_without_n_bit_reads_sequence_and_frame_headers() -> None:
    frames = rtp_samples.av1_frames(set_n_bit=False)
    assert not any(p[0] & 0x08 for f in frames for p in f.payloads)
    check_real_stream("video/AV1", frames, later_may_be_key=False)


def nal_types_h264(frames: list[Frame]) -> set[str]:
    kinds = set()
    for frame in frames:
        for payload in frame.payloads:
            nal = payload[0] & 0x1F
            if nal == 24:
                kinds.add("STAP-A")
            elif nal == 28:
                position = {0x80: "start", 0x40: "end", 0: "middle"}[payload[1] & 0xC0]
                kinds.add(f"FU-A {position}")
            else:
                kinds.add(f"single {nal}")
    return kinds


def test_h264_from_aiortc_packetizer() -> None:
    frames = rtp_samples.h264_frames()
    assert {"STAP-A", "FU-A start", "FU-A middle", "FU-A end"} <= nal_types_h264(frames)
    check_real_stream("video/H264", frames, later_may_be_key=True)
    for frame in frames:
        for payload in frame.payloads:
            found = flags("video/H264", payload)
            if payload[0] & 0x1F == 28 and not payload[1] & 0x80:
                assert found == 0  # FU-A middle or end fragment
            if payload[0] & 0x1F == 24 and frame.keyframe and payload is frame.payloads[0]:
                assert found == KEY | PARAMETER_SETS  # SPS + PPS aggregated


def test_h265_from_x265() -> None:
    frames = rtp_samples.h265_frames()
    types = {(p[0] >> 1) & 0x3F for f in frames for p in f.payloads}
    assert {48, 49} <= types  # aggregation packets and fragmentation units
    check_real_stream("video/H265", frames, later_may_be_key=True)
    for frame in frames:
        for payload in frame.payloads:
            if (payload[0] >> 1) & 0x3F == 49 and not payload[2] & 0x80:
                assert flags("video/H265", payload) == 0
    # every keyframe carries an IRAP slice start (IDR or CRA)
    for frame in frames:
        if frame.keyframe:
            irap = [p for p in frame.payloads if (p[0] >> 1) & 0x3F == 49 and p[2] & 0x80
                    and 16 <= p[2] & 0x3F <= 21]
            assert irap and flags("video/H265", irap[0]) == KEY


def test_opus_and_audio() -> None:
    for payload in rtp_samples.opus_payloads(5):
        assert flags("audio/opus", payload) == KEY
    assert flags("audio/opus", b"") == 0
    assert flags("audio/PCMU", b"\xff" * 160) == KEY
    assert KeyframeDetector("audio/PCMU").exact


@pytest.mark.parametrize("mime", ["video/x-unknown", "video/rtx", "video/red", "audio/rtx",
                                  "application/octet-stream"])
def test_unknown_codecs_never_claim_a_keyframe(mime: str) -> None:
    detector = KeyframeDetector(mime)
    assert not detector.exact
    for payload in (b"\x10\x00\x00\x9d\x01\x2a", b"\x67\x42", b"\x08"):
        assert detector.inspect(payload, 0, len(payload)) == 0
        assert not detector.is_keyframe(payload)


def test_detector_is_case_insensitive_and_reads_offsets() -> None:
    detector = KeyframeDetector("Video/VP8")
    assert detector.exact and detector.mime_type == "video/vp8"
    key = b"\x10\x00\x00\x00\x9d\x01\x2a"
    padded = b"HEADER" + key + b"PAD"
    assert detector.inspect(padded, 6, 6 + len(key)) == KEY
    assert detector.inspect(padded, 6, 9) == FRAME_START  # start code cut off
    assert detector.is_keyframe(key)
    assert KeyframeDetector("video/hevc").inspect is inspect_h265


# --- VP8 (RFC 7741) ---------------------------------------------------------------------

VP8_KEY_HEADER = b"\x50\x2b\x00\x9d\x01\x2a\x40\x01\xf0\x00"
VP8_DELTA_HEADER = b"\x31\x0b\x00\xaa\xbb"


@pytest.mark.parametrize(
    ("descriptor", "body", "expected"),
    [
        (b"\x10", VP8_KEY_HEADER, KEY),
        (b"\x10", VP8_DELTA_HEADER, FRAME_START),
        (b"\x90\x80\x2a", VP8_KEY_HEADER, KEY),  # X, I with a 7-bit picture id
        (b"\x90\xf0\x81\x23\x05\xa0", VP8_KEY_HEADER, KEY),  # 15-bit id, TL0PICIDX, T/K
        (b"\x90\x20\xc0", VP8_DELTA_HEADER, FRAME_START),  # T only
        (b"\x00", VP8_KEY_HEADER, 0),  # continuation (S = 0)
        (b"\x80\x80\x2a", VP8_KEY_HEADER, 0),  # X and I set, S clear: a middle packet
        (b"\x11", VP8_KEY_HEADER, 0),  # S = 1 but partition 1
        (b"\x10", b"\x50\x2b\x00\x00\x00\x00", FRAME_START),  # P = 0 without start code
        (b"\x90", b"", 0),  # X without the extension byte
        (b"\x90\x80", b"", 0),  # I without the picture id
        (b"\x90\x80\x81", b"", 0),  # long picture id truncated: nothing after it
        (b"\x10", b"", 0),
    ],
)
def test_vp8_descriptor_cases(descriptor: bytes, body: bytes, expected: int) -> None:
    payload = descriptor + body
    assert inspect_vp8(payload, 0, len(payload)) == expected


# --- VP9 (RFC 9628) ---------------------------------------------------------------------


def vp9_header(key: bool, profile: int = 0, show_existing: bool = False) -> bytes:
    """The first bytes of a VP9 uncompressed header."""
    bits = "10" + str(profile & 1) + str(profile >> 1)
    if profile == 3:
        bits += "0"
    bits += "1" if show_existing else "0"
    if show_existing:
        bits += "000"
    else:
        bits += "0" if key else "1"
        bits += "10"  # show_frame, error_resilient_mode
        bits += "010010011000001101000010"  # 0x49 0x83 0x42
    bits += "0" * (-len(bits) % 8 + 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def test_vp9_frame_header_bits() -> None:
    for profile in range(4):
        for key in (True, False):
            payload = b"\x08" + vp9_header(key, profile)
            assert inspect_vp9(payload, 0, len(payload)) == (KEY if key else FRAME_START)
    shown = b"\x08" + vp9_header(True, show_existing=True)
    assert inspect_vp9(shown, 0, len(shown)) == FRAME_START
    broken_sync = bytearray(b"\x08" + vp9_header(True))
    broken_sync[3] ^= 0xFF
    assert inspect_vp9(bytes(broken_sync), 0, len(broken_sync)) == FRAME_START
    assert inspect_vp9(b"\x08\x00\x00\x00\x00\x00", 0, 6) == FRAME_START  # bad frame marker


KEY_HEADER = vp9_header(True)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # every descriptor is followed by a key frame header: only the descriptor decides
        (b"\x08" + KEY_HEADER, KEY),  # B only: non-flexible, no layers
        (b"\x48" + KEY_HEADER, FRAME_START),  # P: inter predicted
        (b"\x00" + KEY_HEADER, 0),  # not a start (no B)
        (b"\x04" + KEY_HEADER, 0),  # end only
        (b"\xa8\x81\x02\x00\x05" + KEY_HEADER, KEY),  # I (15-bit), L: SID 0, TL0PICIDX
        (b"\xa8\x81\x02\x02\x05" + KEY_HEADER, 0),  # SID 1: upper spatial layer
        (b"\xa8\x81\x02\x01\x05" + KEY_HEADER, FRAME_START),  # SID 0, inter-layer dependency
        (b"\xb8\x2a\x00" + KEY_HEADER, KEY),  # flexible, 7-bit id, layer byte, no TL0PICIDX
        (b"\xf8\x2a\x20\x03\x04" + KEY_HEADER, FRAME_START),  # flexible, P with P_DIFFs
        (b"\x0a\x10\x01\x40\x00\xf0" + KEY_HEADER, KEY),  # V: SS with one resolution
        (b"\x0a\x38" + b"\x01\x40\x00\xf0" * 2 + b"\x02\x04\x01\x00" + KEY_HEADER, KEY),
        (b"\x08" + vp9_header(False), FRAME_START),  # descriptor says key, header says inter
        # truncated descriptors
        (b"\x0a\x18\x01\x40\x00\xf0\x02\x04", FRAME_START),  # SS groups cut off
        (b"\x0a", FRAME_START),  # V with the SS missing
        (b"\x08" + KEY_HEADER[:3], FRAME_START),  # header too short to verify
        (b"\x88", 0),  # I without picture id
        (b"\x28", 0),  # L without layer byte
        (b"", 0),
    ],
)
def test_vp9_descriptor_cases(payload: bytes, expected: int) -> None:
    assert inspect_vp9(payload, 0, len(payload)) == expected


# --- H.264 (RFC 6184) -------------------------------------------------------------------

SPS = b"\x67\x42\xc0\x1f\xda"
PPS = b"\x68\xce\x3c\x80"
IDR_FIRST = b"\x65\x88\x84\x00"  # first_mb_in_slice = 0 (first bit 1)
IDR_LATER = b"\x65\x41\x9a\x00"  # first_mb_in_slice > 0
P_FIRST = b"\x41\x9a\x02\x00"
P_LATER = b"\x41\x01\x9a\x00"


def stap(*nals: bytes, kind: int = 24, don: bytes = b"") -> bytes:
    return bytes((kind,)) + don + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


def fu_a(nal: bytes, start: bool, end: bool = False, kind: int = 28) -> bytes:
    indicator = (nal[0] & 0xE0) | kind
    header = (0x80 if start else 0) | (0x40 if end else 0) | (nal[0] & 0x1F)
    don = b"\x00\x07" if kind == 29 else b""
    return bytes((indicator, header)) + don + nal[1:]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (SPS, KEY | PARAMETER_SETS),
        (PPS, FRAME_START | PARAMETER_SETS),
        (IDR_FIRST, KEY),
        (IDR_LATER, 0),  # a later slice of an IDR picture
        (P_FIRST, FRAME_START),
        (P_LATER, 0),
        (b"\x09\xf0", FRAME_START),  # access unit delimiter
        (b"\x06\x05\x10", FRAME_START),  # SEI
        (b"\x0c\xff", 0),  # filler data
        (b"\x00\x01", 0),  # type 0 is unspecified
        (stap(SPS, PPS, IDR_FIRST), KEY | PARAMETER_SETS),
        (stap(P_FIRST, P_LATER), FRAME_START),
        (stap(SPS, PPS, kind=25, don=b"\x00\x01"), KEY | PARAMETER_SETS),  # STAP-B
        (stap(SPS)[:3] + SPS[:1], 0),  # size runs past the end
        (fu_a(IDR_FIRST + b"\x00" * 50, start=True), KEY),
        (fu_a(IDR_FIRST + b"\x00" * 50, start=False), 0),
        (fu_a(IDR_FIRST, start=False, end=True), 0),
        (fu_a(P_FIRST + b"\x00" * 9, start=True), FRAME_START),
        (fu_a(IDR_FIRST, start=True, kind=29), KEY),  # FU-B
        (b"\x7c", 0),  # FU-A without its header
        (b"\x1a\x00\x01\x00\x05" + SPS, 0),  # MTAP16: interleaved mode, not inspected
        (b"", 0),
    ],
)
def test_h264_cases(payload: bytes, expected: int) -> None:
    assert inspect_h264(payload, 0, len(payload)) == expected


# --- H.265 (RFC 7798) -------------------------------------------------------------------


def h265_nal(nal_type: int, first_slice: bool = True, body: bytes = b"\x11\x22") -> bytes:
    return bytes((nal_type << 1, 1, (0x80 if first_slice else 0) | 0x01)) + body


def h265_fu(nal: bytes, start: bool) -> bytes:
    return bytes((49 << 1, nal[1], (0x80 if start else 0) | ((nal[0] >> 1) & 0x3F))) + nal[2:]


def h265_ap(*nals: bytes) -> bytes:
    return bytes((48 << 1, 1)) + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (h265_nal(19), KEY),  # IDR_W_RADL
        (h265_nal(20), KEY),  # IDR_N_LP
        (h265_nal(21), KEY),  # CRA
        (h265_nal(16), KEY),  # BLA_W_LP
        (h265_nal(19, first_slice=False), 0),
        (h265_nal(1), FRAME_START),  # TRAIL_R
        (h265_nal(1, first_slice=False), 0),
        (h265_nal(32), KEY | PARAMETER_SETS),  # VPS
        (h265_nal(33), KEY | PARAMETER_SETS),  # SPS
        (h265_nal(34), FRAME_START | PARAMETER_SETS),  # PPS
        (h265_nal(35), FRAME_START),  # AUD
        (h265_nal(39), FRAME_START),  # prefix SEI
        (h265_nal(40), 0),  # suffix SEI
        (h265_ap(h265_nal(32), h265_nal(33), h265_nal(34)), KEY | PARAMETER_SETS),
        (h265_ap(h265_nal(1), h265_nal(1, first_slice=False)), FRAME_START),
        (h265_ap(h265_nal(40))[:4], 0),  # truncated size
        (h265_fu(h265_nal(19, body=b"\x00" * 40), start=True), KEY),
        (h265_fu(h265_nal(19, body=b"\x00" * 40), start=False), 0),
        (h265_fu(h265_nal(21), start=True), KEY),
        (h265_fu(h265_nal(1), start=True), FRAME_START),
        (bytes((50 << 1, 1)) + h265_nal(19), 0),  # PACI: not inspected
        (b"\x62\x01", 0),  # FU without its header
        (b"\x26", 0),
    ],
)
def test_h265_cases(payload: bytes, expected: int) -> None:
    assert inspect_h265(payload, 0, len(payload)) == expected


# --- AV1 (AOM RTP payload format) -------------------------------------------------------

SEQUENCE_HEADER = bytes((1 << 3,)) + b"\x00\x00\x00"  # seq_profile 0, not reduced
REDUCED_SEQUENCE_HEADER = bytes((1 << 3,)) + b"\x18\x00"  # still_picture, reduced header
KEY_FRAME = bytes((6 << 3,)) + b"\x10\x00"  # show_existing 0, frame_type 0 (KEY), show_frame 1
INTER_FRAME = bytes((6 << 3,)) + b"\x30\x00"  # frame_type 1 (INTER)
FRAME_HEADER_KEY = bytes((3 << 3,)) + b"\x10"
TILE_GROUP = bytes((4 << 3,)) + b"\xaa\xbb"


def av1(*obus: bytes, z: bool = False, y: bool = False, n: bool = False, w: int = 0) -> bytes:
    aggregation = (0x80 if z else 0) | (0x40 if y else 0) | (w << 4) | (0x08 if n else 0)
    body = b""
    for index, obu in enumerate(obus):
        last_without_length = w and index == w - 1
        body += obu if last_without_length else leb128(len(obu)) + obu
    return bytes((aggregation,)) + body


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (av1(SEQUENCE_HEADER, KEY_FRAME, n=True), KEY | PARAMETER_SETS),
        (av1(SEQUENCE_HEADER, KEY_FRAME), KEY | PARAMETER_SETS),  # no N: headers decide
        (av1(SEQUENCE_HEADER, INTER_FRAME), FRAME_START | PARAMETER_SETS),  # repeated header
        (av1(SEQUENCE_HEADER), FRAME_START | PARAMETER_SETS),  # frame in the next packet
        (av1(SEQUENCE_HEADER, FRAME_HEADER_KEY, TILE_GROUP), KEY | PARAMETER_SETS),
        (av1(REDUCED_SEQUENCE_HEADER, INTER_FRAME), KEY | PARAMETER_SETS),  # all frames key
        (av1(KEY_FRAME, n=True), KEY),  # N trusted even without a sequence header
        (av1(KEY_FRAME), FRAME_START),  # no N, no sequence header: not provable
        (av1(INTER_FRAME), FRAME_START),
        (av1(TILE_GROUP), 0),  # starts mid-frame
        (av1(SEQUENCE_HEADER, KEY_FRAME, z=True, n=True), 0),  # Z: continuation
        (av1(SEQUENCE_HEADER, KEY_FRAME, w=2), KEY | PARAMETER_SETS),  # last without length
        (av1(INTER_FRAME, w=1), FRAME_START),
        (av1(SEQUENCE_HEADER, KEY_FRAME, TILE_GROUP, w=3, y=True), KEY | PARAMETER_SETS),
        (b"\x00\x85", 0),  # truncated leb128
        (b"\x00\x05\x30", 0),  # element longer than the packet
        (b"\x00", 0),
    ],
)
def test_av1_cases(payload: bytes, expected: int) -> None:
    assert inspect_av1(payload, 0, len(payload)) == expected


def test_av1_obu_extension_and_size_fields() -> None:
    with_extension = bytes((1 << 3 | 0x04, 0x08)) + SEQUENCE_HEADER[1:]  # temporal/spatial ids
    sized_frame = bytes((6 << 3 | 0x02, 2)) + KEY_FRAME[1:]  # obu_has_size_field with obu_size
    payload = av1(with_extension, sized_frame)
    assert inspect_av1(payload, 0, len(payload)) == KEY | PARAMETER_SETS
    sized_inter = bytes((6 << 3 | 0x02, 2)) + INTER_FRAME[1:]
    payload = av1(with_extension, sized_inter)
    assert inspect_av1(payload, 0, len(payload)) == FRAME_START | PARAMETER_SETS


# --- robustness -------------------------------------------------------------------------

INSPECTORS: list[Callable[[bytes, int, int], int]] = [
    inspect_vp8, inspect_vp9, inspect_h264, inspect_h265, inspect_av1,
]


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 8))
def test_any_bytes_give_consistent_flags(data: bytes, start: int) -> None:
    for inspect in INSPECTORS:
        found = inspect(data, min(start, len(data)), len(data))
        assert 0 <= found <= 7
        assert not found & KEYFRAME or found & FRAME_START
