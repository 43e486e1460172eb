"""media.rtp.header against aiortc's own RTP serializer/parser and hypothesis-generated packets."""

from __future__ import annotations

import struct
from typing import cast

import pytest
from aiortc.rtp import RtpPacket, pack_header_extensions, unwrap_rtx, wrap_rtx
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp.header import (
    PUBLISHER_SCOPED_URIS,
    URI_MID,
    ExtensionRemap,
    RtpHeader,
    extension_elements,
)
from tests.media.rtp.rtp_samples import VIDEO_EXTENSIONS, rtp_packets, vp8_frames

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def build(
    *,
    payload: bytes = b"\x90\x80\x01payload",
    extensions: list[tuple[int, bytes]] | None = None,
    profile: int | None = None,
    csrcs: tuple[int, ...] = (),
    padding: int = 0,
    marker: bool = False,
    payload_type: int = 96,
    sequence_number: int = 4660,
    timestamp: int = 0x01020304,
    ssrc: int = 0xCAFEBABE,
) -> bytes:
    """An RTP packet from its parts; the extension block is packed by aiortc."""
    block = b""
    if extensions is not None:
        packed_profile, value = pack_header_extensions(extensions)
        if profile is not None:
            packed_profile = profile
        block = struct.pack("!HH", packed_profile, len(value) // 4) + value
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extensions is not None else 0) | len(csrcs)
    header = struct.pack(
        "!BBHII", first, (marker << 7) | payload_type, sequence_number, timestamp, ssrc
    )
    tail = bytes(range(1, padding)) + bytes((padding,)) if padding else b""
    return header + b"".join(struct.pack("!I", c) for c in csrcs) + block + payload + tail


def test_parses_packets_as_aiortc_serializes_them() -> None:
    frames = vp8_frames()
    packets = rtp_packets(frames[0].payloads + frames[1].payloads)
    for data in packets:
        header = RtpHeader(data)
        reference = RtpPacket.parse(data, VIDEO_EXTENSIONS)
        assert header.sequence_number == reference.sequence_number
        assert header.timestamp == reference.timestamp
        assert header.ssrc == reference.ssrc
        assert header.payload_type == reference.payload_type
        assert header.marker == bool(reference.marker)
        assert bytes(header.payload) == reference.payload
        assert header.padding_size == 0
        assert header.extension(1) == b"0"  # mid
        assert header.extension(3) == (0x123456).to_bytes(3, "big")  # abs-send-time
        assert header.extension(2) is None
        assert header.extension_ids == (1 << 1) | (1 << 3)


def test_csrcs_padding_and_payload_offsets() -> None:
    reference = RtpPacket(payload_type=111, marker=1, sequence_number=65535, timestamp=7,
                          ssrc=42, payload=b"opus frame")
    reference.csrc = [1, 0xFFFFFFFF]
    reference.padding_size = 9
    data = reference.serialize()
    header = RtpHeader(data)
    assert header.csrcs == (1, 0xFFFFFFFF)
    assert header.extension_profile is None
    assert header.extensions() == [] and header.extension(1) is None
    assert bytes(header.payload) == b"opus frame"
    assert header.padding_size == 9
    assert header.marker and header.payload_type == 111 and header.sequence_number == 65535


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60\x00", "shorter than 12"),
        (build()[:0] + b"\x40" + build()[1:], "version 2"),
        (b"\x82" + build()[1:12] + b"\x00\x00\x00\x01", "longer than the packet"),  # 2 CSRCs
        (b"\x90" + build()[1:12] + b"\xbe\xde", "extension truncated"),
        (b"\x90" + build()[1:12] + b"\xbe\xde\x00\x04\x10\x00", "longer than the packet"),
        (b"\xa0" + build()[1:12] + b"abc\x00", "padding"),  # padding count 0
        (b"\xa0" + build()[1:12] + b"abc\x05", "padding"),  # more padding than payload
    ],
)
def test_rejects_what_rfc_3550_does_not_allow(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpHeader(data)


def test_padding_only_packet_has_an_empty_payload() -> None:
    header = RtpHeader(build(payload=b"", padding=200))
    assert header.payload_start == header.payload_end and header.padding_size == 200


def test_two_byte_extensions_and_appbits() -> None:
    elements = [(1, b"0"), (20, b"rid-value"), (3, b"")]  # id > 14 and an empty value
    for profile in (0x1000, 0x100F):
        header = RtpHeader(build(extensions=elements, profile=profile))
        assert header.extension_profile == profile
        assert header.extensions() == elements
        assert header.extension(20) == b"rid-value" and header.extension(3) == b""


def test_one_byte_padding_bytes_and_reserved_id_15() -> None:
    # id 1 (1 byte), two padding bytes, id 2 (2 bytes), then id 15 ends the walk
    block = b"\x10\xaa\x00\x00\x21\xbb\xcc\xf0\xdd\x00\x00\x00"
    data = build()[:12] + struct.pack("!HH", 0xBEDE, 3) + block + b"payload"
    data = bytes((data[0] | 0x10,)) + data[1:]
    header = RtpHeader(data)
    assert header.extensions() == [(1, b"\xaa"), (2, b"\xbb\xcc")]
    assert bytes(header.payload) == b"payload"


def test_truncated_element_ends_the_walk() -> None:
    data = b"\x00\x00\x31\xaa"  # padding, then id 3 claiming 2 bytes with 1 left
    assert extension_elements(data, 0, 4, 0xBEDE) == []
    assert extension_elements(b"\x05\x09ab", 0, 4, 0x1000) == []
    assert extension_elements(b"\x05", 0, 1, 0x1000) == []
    assert extension_elements(b"\x10\xaa", 0, 2, 0xABCD) == []  # unknown profile
    assert extension_elements(b"\x10\xaa\x21\xbb", 0, 3, 0xBEDE) == [(1, 1, 1)]


def test_rewrite_changes_only_the_fixed_header() -> None:
    data = build(extensions=[(1, b"0"), (3, b"abc")], csrcs=(5,), padding=3, marker=True)
    header = RtpHeader(data)
    out = header.rewrite(ssrc=0x11111111, sequence_number=65535, timestamp=0xFFFFFFFF,
                         payload_type=100)
    assert isinstance(out, bytes) and len(out) == len(data)
    assert out[12:] == data[12:] and out[0] == data[0]
    again = RtpHeader(out)
    assert (again.ssrc, again.sequence_number, again.timestamp, again.payload_type) == (
        0x11111111, 65535, 0xFFFFFFFF, 100)
    assert again.marker
    assert not RtpHeader(header.rewrite(1, 2, 3, 4, marker=False)).marker
    assert RtpHeader(RtpHeader(build()).rewrite(1, 2, 3, 4, marker=True)).marker


def test_rewrite_rejects_out_of_range_fields() -> None:
    with pytest.raises(struct.error):
        RtpHeader(build()).rewrite(ssrc=1, sequence_number=65536, timestamp=0, payload_type=96)


def test_remap_renumbers_and_drops_extensions() -> None:
    data = build(extensions=[(1, b"0"), (3, b"abc"), (2, b"\x85")], padding=4)
    header = RtpHeader(data)
    remap = ExtensionRemap({3: 5, 2: 2})  # mid (1) not negotiated by the subscriber
    out = RtpHeader(header.rewrite(1, 2, 3, 96, remap=remap))
    assert out.extensions() == [(5, b"abc"), (2, b"\x85")]
    assert out.extension_profile == 0xBEDE
    assert bytes(out.payload) == bytes(header.payload)
    assert out.data[out.payload_end :] == data[header.payload_end :]  # padding kept
    assert (out.payload_start - out.extension_start) % 4 == 0
    parsed = RtpPacket.parse(out.data)  # aiortc accepts the rebuilt packet
    assert parsed.payload == bytes(header.payload) and parsed.padding_size == 4


def test_remap_dropping_everything_removes_the_block() -> None:
    data = build(extensions=[(1, b"0")], csrcs=(9, 10))
    out = RtpHeader(RtpHeader(data).rewrite(1, 2, 3, 96, remap=ExtensionRemap({})))
    assert out.extension_profile is None and not out.data[0] & 0x10
    assert out.csrcs == (9, 10)
    assert bytes(out.payload) == bytes(RtpHeader(data).payload)
    assert len(out.data) == len(data) - 8


def test_identity_remap_copies_nothing_and_rebuilds_are_memoised() -> None:
    header = RtpHeader(build(extensions=[(1, b"0"), (3, b"abc")]))
    assert header.remapped(ExtensionRemap({1: 1, 3: 3, 4: 9})) is header.data
    remap = ExtensionRemap({1: 2})
    assert header.remapped(remap) is header.remapped(remap)
    assert header.remapped(remap) is not header.data
    # no extension block: nothing to remap
    plain = RtpHeader(build())
    assert plain.remapped(remap) is plain.data


def test_one_byte_elements_that_do_not_fit_need_two_byte_permission() -> None:
    header = RtpHeader(build(extensions=[(1, b"0"), (3, b"abc")]))
    wide = ExtensionRemap({1: 1, 3: 20}, two_byte=True)
    out = RtpHeader(header.remapped(wide))
    assert out.extension_profile == 0x1000 and out.extensions() == [(1, b"0"), (20, b"abc")]
    narrow = ExtensionRemap({1: 1, 3: 20})
    assert RtpHeader(header.remapped(narrow)).extensions() == [(1, b"0")]


def test_two_byte_source_goes_one_byte_when_it_can() -> None:
    header = RtpHeader(build(extensions=[(1, b"0"), (30, b""), (4, b"x" * 17)]))
    assert header.extension_profile == 0x1000
    one_byte_only = RtpHeader(header.remapped(ExtensionRemap({1: 1, 30: 5, 4: 4})))
    assert one_byte_only.extension_profile == 0xBEDE
    assert one_byte_only.extensions() == [(1, b"0")]  # empty and 17-byte values cannot
    mixed = RtpHeader(header.remapped(ExtensionRemap({1: 1, 30: 5, 4: 4}, two_byte=True)))
    assert mixed.extension_profile == 0x1000
    assert mixed.extensions() == [(1, b"0"), (5, b""), (4, b"x" * 17)]
    # a two-byte block whose ids map to themselves is kept as is only with permission
    same = ExtensionRemap({1: 1, 30: 30, 4: 4}, two_byte=True)
    assert header.remapped(same) is header.data


def test_remap_from_uris_drops_publisher_scoped_extensions() -> None:
    publisher = {URI_MID: 1, ABS_SEND_TIME: 3, AUDIO_LEVEL: 4}
    subscriber = {URI_MID: 1, ABS_SEND_TIME: 2}
    remap = ExtensionRemap.from_uris(publisher, subscriber)
    assert remap.table[3] == 2 and remap.table[1] == 0 and remap.table[4] == 0
    assert URI_MID in PUBLISHER_SCOPED_URIS
    keep_mid = ExtensionRemap.from_uris(publisher, subscriber, exclude=())
    assert keep_mid.table[1] == 1
    with pytest.raises(ValueError):
        ExtensionRemap({0: 1})


def test_rtx_wrap_and_unwrap_agree_with_aiortc() -> None:
    original = rtp_packets(vp8_frames()[0].payloads)[0]
    header = RtpHeader(original)
    rtx = header.wrap_rtx(payload_type=97, sequence_number=7, ssrc=0x5555)
    # aiortc reads our RTX packet back to the original
    aiortc_rtx = RtpPacket.parse(rtx, VIDEO_EXTENSIONS)
    recovered = unwrap_rtx(aiortc_rtx, payload_type=96, ssrc=header.ssrc)
    assert recovered.sequence_number == header.sequence_number
    assert recovered.payload == bytes(header.payload)
    assert aiortc_rtx.sequence_number == 7 and aiortc_rtx.ssrc == 0x5555
    # and we read aiortc's RTX packet back to the exact original bytes
    theirs = wrap_rtx(RtpPacket.parse(original, VIDEO_EXTENSIONS), payload_type=97,
                      sequence_number=8, ssrc=0x5555).serialize(VIDEO_EXTENSIONS)
    unwrapped = RtpHeader(theirs).unwrap_rtx(payload_type=96, ssrc=header.ssrc)
    assert unwrapped is not None and unwrapped.data == original


def test_padding_only_rtx_has_no_original() -> None:
    probe = RtpHeader(build(payload=b"", padding=224, payload_type=97))
    assert probe.unwrap_rtx(payload_type=96, ssrc=1) is None
    assert RtpHeader(build(payload=b"\x01")).unwrap_rtx(96, 1) is None


# --- properties -------------------------------------------------------------------------

one_byte_elements = st.lists(
    st.tuples(st.integers(1, 14), st.binary(min_size=1, max_size=16)), max_size=6
)
two_byte_elements = st.lists(
    st.tuples(st.integers(1, 255), st.binary(min_size=0, max_size=40)), min_size=1, max_size=6
).filter(lambda els: any(i > 14 or not 1 <= len(v) <= 16 for i, v in els))


@st.composite
def packets(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    parts: dict[str, object] = {
        "payload": draw(st.binary(max_size=1300)),
        "csrcs": tuple(draw(st.lists(st.integers(0, 2**32 - 1), max_size=15))),
        "padding": draw(st.sampled_from([0, 0, 1, 2, 7, 255])),
        "marker": draw(st.booleans()),
        "payload_type": draw(st.integers(0, 127)),
        "sequence_number": draw(st.integers(0, 65535)),
        "timestamp": draw(st.integers(0, 2**32 - 1)),
        "ssrc": draw(st.integers(0, 2**32 - 1)),
    }
    kind = draw(st.sampled_from(["none", "one", "two"]))
    if kind != "none":
        parts["extensions"] = draw(one_byte_elements if kind == "one" else two_byte_elements)
    return build(**parts), parts  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(packets())
def test_parse_finds_every_part(sample: tuple[bytes, dict[str, object]]) -> None:
    data, parts = sample
    header = RtpHeader(data)
    assert bytes(header.payload) == parts["payload"]
    assert header.csrcs == parts["csrcs"]
    assert header.padding_size == parts["padding"]
    assert header.extensions() == parts.get("extensions", [])
    assert (header.marker, header.payload_type, header.sequence_number, header.timestamp,
            header.ssrc) == tuple(parts[k] for k in ("marker", "payload_type", "sequence_number",
                                                     "timestamp", "ssrc"))


@settings(max_examples=300, deadline=None)
@given(
    packets(),
    st.dictionaries(st.integers(1, 255), st.integers(0, 255), max_size=8),
    st.booleans(),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
)
def test_rewrite_and_remap_never_touch_payload_or_padding(
    sample: tuple[bytes, dict[str, object]],
    mapping: dict[int, int],
    two_byte: bool,
    sequence_number: int,
    timestamp: int,
) -> None:
    data, parts = sample
    header = RtpHeader(data)
    remap = ExtensionRemap(mapping, two_byte=two_byte)
    out = RtpHeader(header.rewrite(0xABCDEF01, sequence_number, timestamp, 101, remap=remap))
    assert bytes(out.payload) == parts["payload"]
    assert out.data[out.payload_end :] == data[header.payload_end :]
    assert out.csrcs == parts["csrcs"]
    assert (out.ssrc, out.sequence_number, out.timestamp, out.payload_type, out.marker) == (
        0xABCDEF01, sequence_number, timestamp, 101, parts["marker"])
    elements = cast(list[tuple[int, bytes]], parts.get("extensions", []))
    expected = [(mapping[i], v) for i, v in elements if mapping.get(i)]
    fits = [(i, v) for i, v in expected if 1 <= i <= 14 and 1 <= len(v) <= 16]
    if not two_byte or len(fits) == len(expected):
        expected = fits
    assert out.extensions() == expected
    if out.extension_profile is not None:
        assert (out.payload_start - out.extension_start) % 4 == 0
    parsed = RtpPacket.parse(out.data)  # aiortc's parser agrees on structure
    assert parsed.payload == parts["payload"] and parsed.csrc == list(parts["csrcs"])


@settings(max_examples=200, deadline=None)
@given(packets(), st.integers(0, 127), st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_rtx_round_trip(
    sample: tuple[bytes, dict[str, object]], rtx_pt: int, rtx_seq: int, rtx_ssrc: int
) -> None:
    data, _parts = sample
    header = RtpHeader(data)
    rtx = RtpHeader(header.wrap_rtx(rtx_pt, rtx_seq, rtx_ssrc))
    assert (rtx.payload_type, rtx.sequence_number, rtx.ssrc) == (rtx_pt, rtx_seq, rtx_ssrc)
    assert rtx.timestamp == header.timestamp and rtx.marker == header.marker
    assert bytes(rtx.payload[:2]) == struct.pack("!H", header.sequence_number)
    original = rtx.unwrap_rtx(header.payload_type, header.ssrc)
    assert original is not None and original.data == data
