"""A parsed RTP packet as offsets into its bytes, and per-subscriber header rewriting.

`RtpHeader(data)` reads the fixed header (RFC 3550 5.1), skips the CSRC list, locates the header
extension block and the padding, and keeps offsets only: the payload is never copied. Extension
elements (RFC 8285 one-byte and two-byte forms) are walked on demand.

`rewrite()` produces the bytes one subscriber gets: the same packet with its own SSRC, sequence
number, timestamp, payload type (and optionally marker), and header-extension ids renumbered by an
`ExtensionRemap`. Renumbering that needs no change (every id in the packet maps to itself) costs
nothing; otherwise the extension block is rebuilt once per packet and remap (memoised on the
header), since every subscriber with the same negotiated ids shares the same `ExtensionRemap`.

`unwrap_rtx()` / `wrap_rtx()` convert between an original packet and its RFC 4588 retransmission
form (the original sequence number, OSN, as the first two payload bytes).

Measured (bench/rtp_primitives.py): the output is built as ``struct.pack(12 bytes) + tail`` where
`tail` is a memoryview of everything after the fixed header, made once per packet and shared by
all subscribers: one copy, about half the cost of ``bytearray(data)`` + ``pack_into`` +
``bytes()``, and it yields `bytes`, which `pylibsrtp.Session.protect()` insists on (it rejects a
bytearray).
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping

RTP_HEADER_SIZE = 12
ONE_BYTE_PROFILE = 0xBEDE
#: Two-byte header profiles are 0x1000-0x100F: the low 4 bits are "appbits" (RFC 8285 4.3).
TWO_BYTE_PROFILE = 0x1000

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_RTP_STREAM_ID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_REPAIRED_RTP_STREAM_ID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
#: Extensions whose values belong to the publisher's transceiver or transport, not to the
#: subscriber's: a forwarded MID would make the subscriber's browser demultiplex the packet to the
#: wrong transceiver, RIDs name the publisher's simulcast layers, and transport-wide sequence
#: numbers must be the subscriber transport's own. `ExtensionRemap.from_uris` drops them.
PUBLISHER_SCOPED_URIS = frozenset(
    {URI_MID, URI_RTP_STREAM_ID, URI_REPAIRED_RTP_STREAM_ID, URI_TRANSPORT_CC}
)

_FIXED = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence number, timestamp, SSRC
_unpack_fixed = _FIXED.unpack_from
_pack_fixed = _FIXED.pack
_EXTENSION_HEADER = struct.Struct("!HH")  # profile, length in 32-bit words
_OSN = struct.Struct("!H")


class ExtensionRemap:
    """Publisher extension id -> subscriber extension id; ids absent from the mapping are dropped.

    Build one per distinct (publisher ids, subscriber ids) pair and share it between subscribers:
    rewritten extension blocks are memoised per packet and remap object.

    One-byte elements carry ids 1-14 and 1-16 bytes of data. When a kept element does not fit
    (a subscriber id above 14, an empty or longer value from a two-byte publisher), the block is
    written in the two-byte form if `two_byte` is set (the subscriber negotiated
    ``a=extmap-allow-mixed``), otherwise that element is dropped.
    """

    __slots__ = ("_same_mask", "table", "two_byte")

    def __init__(self, mapping: Mapping[int, int], *, two_byte: bool = False) -> None:
        table = [0] * 256
        same = 0
        for source, target in mapping.items():
            if not 1 <= source <= 255 or not 0 <= target <= 255:
                raise ValueError(f"extension id out of range: {source} -> {target}")
            table[source] = target
            if source == target:
                same |= 1 << source
        self.table: tuple[int, ...] = tuple(table)
        self.two_byte = two_byte
        self._same_mask = same

    @classmethod
    def from_uris(
        cls,
        publisher: Mapping[str, int],
        subscriber: Mapping[str, int],
        *,
        two_byte: bool = False,
        exclude: Collection[str] = PUBLISHER_SCOPED_URIS,
    ) -> ExtensionRemap:
        """Map by URI from the two sides' negotiated ``uri -> id`` extmaps."""
        mapping = {
            pid: subscriber[uri]
            for uri, pid in publisher.items()
            if uri in subscriber and uri not in exclude
        }
        return cls(mapping, two_byte=two_byte)

    def keeps_unchanged(self, ids_mask: int) -> bool:
        """True if every id in `ids_mask` (bit n = id n present) maps to itself."""
        return ids_mask & ~self._same_mask == 0


def extension_elements(
    data: bytes | bytearray | memoryview, start: int, end: int, profile: int
) -> list[tuple[int, int, int]]:
    """``(id, value offset, value length)`` for the elements in ``data[start:end]``.

    Padding bytes (id 0) are skipped. In the one-byte form id 15 ends the walk (RFC 8285 4.2); a
    truncated element ends it too, keeping the elements before it. Unknown profiles (RFC 3550
    generic extensions) have no elements we can read.
    """
    elements: list[tuple[int, int, int]] = []
    pos = start
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            byte = data[pos]
            if byte == 0:
                pos += 1
                continue
            ext_id = byte >> 4
            length = (byte & 0x0F) + 1
            if ext_id == 15 or pos + 1 + length > end:
                break
            elements.append((ext_id, pos + 1, length))
            pos += 1 + length
    elif profile & 0xFFF0 == TWO_BYTE_PROFILE:
        while pos < end:
            ext_id = data[pos]
            if ext_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                break
            length = data[pos + 1]
            if pos + 2 + length > end:
                break
            elements.append((ext_id, pos + 2, length))
            pos += 2 + length
    return elements


class RtpHeader:
    """One RTP packet, parsed into header fields and offsets; `data` is never modified.

    Offsets: the CSRC list ends at `csrc_end`; if the X bit is set, the extension elements are
    ``data[extension_start:payload_start]`` with `extension_profile`, else `extension_profile` is
    None and ``extension_start == payload_start``; the payload is
    ``data[payload_start:payload_end]`` and padding (P bit) fills the rest, its size in the last
    byte. Raises ValueError on anything RFC 3550 does not allow.
    """

    __slots__ = (
        "_ids",
        "_memo",
        "_tail",
        "csrc_end",
        "data",
        "extension_profile",
        "extension_start",
        "marker",
        "payload_end",
        "payload_start",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    def __init__(self, data: bytes) -> None:
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise ValueError("RTP packet shorter than 12 bytes")
        b0, b1, self.sequence_number, self.timestamp, self.ssrc = _unpack_fixed(data)
        if b0 & 0xC0 != 0x80:
            raise ValueError("not an RTP version 2 packet")
        self.data = data
        self.marker = b1 > 127
        self.payload_type = b1 & 0x7F
        pos = self.csrc_end = RTP_HEADER_SIZE + (b0 & 0x0F) * 4
        if b0 & 0x10:
            if size < pos + 4:
                raise ValueError("RTP header extension truncated")
            self.extension_profile, words = _EXTENSION_HEADER.unpack_from(data, pos)
            pos += 4
            self.extension_start = pos
            pos += words * 4
        else:
            self.extension_profile = None
            self.extension_start = pos
        if pos > size:
            raise ValueError("RTP header longer than the packet")
        self.payload_start = pos
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or padding > size - pos:
                raise ValueError("RTP padding length is invalid")
            size -= padding
        self.payload_end = size
        self._ids = -1
        self._tail: memoryview | None = None
        self._memo: dict[ExtensionRemap, tuple[bytes, int, memoryview]] | None = None

    def __repr__(self) -> str:
        return (
            f"RtpHeader(ssrc={self.ssrc}, seq={self.sequence_number}, ts={self.timestamp}, "
            f"pt={self.payload_type}, marker={self.marker}, "
            f"payload={self.payload_end - self.payload_start} bytes)"
        )

    @property
    def payload(self) -> memoryview:
        return memoryview(self.data)[self.payload_start : self.payload_end]

    @property
    def padding_size(self) -> int:
        return len(self.data) - self.payload_end

    @property
    def csrcs(self) -> tuple[int, ...]:
        count = (self.csrc_end - RTP_HEADER_SIZE) // 4
        return struct.unpack_from(f"!{count}I", self.data, RTP_HEADER_SIZE)

    def extensions(self) -> list[tuple[int, bytes]]:
        """All header extension elements as ``(id, value)``, in packet order."""
        if self.extension_profile is None:
            return []
        data = self.data
        return [
            (ext_id, data[offset : offset + length])
            for ext_id, offset, length in extension_elements(
                data, self.extension_start, self.payload_start, self.extension_profile
            )
        ]

    def extension(self, ext_id: int) -> bytes | None:
        """The value of the first element with `ext_id`, or None."""
        if self.extension_profile is None:
            return None
        for found, offset, length in extension_elements(
            self.data, self.extension_start, self.payload_start, self.extension_profile
        ):
            if found == ext_id:
                return self.data[offset : offset + length]
        return None

    @property
    def extension_ids(self) -> int:
        """Bit mask of the extension ids present (bit n set = id n), computed once."""
        if self._ids < 0:
            mask = 0
            if self.extension_profile is not None:
                for ext_id, _offset, _length in extension_elements(
                    self.data, self.extension_start, self.payload_start, self.extension_profile
                ):
                    mask |= 1 << ext_id
            self._ids = mask
        return self._ids

    def remapped(self, remap: ExtensionRemap) -> bytes:
        """`data` with its extension ids renumbered by `remap` (the same object if unchanged)."""
        return self._remapped(remap)[0]

    def _remapped(self, remap: ExtensionRemap) -> tuple[bytes, int, memoryview]:
        """``(packet, its first byte, its bytes after the fixed header)``, memoised per remap."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        else:
            cached = memo.get(remap)
            if cached is not None:
                return cached
        profile = self.extension_profile
        if profile is None or (
            (profile == ONE_BYTE_PROFILE or (remap.two_byte and profile & 0xFFF0 == 0x1000))
            and remap.keeps_unchanged(self.extension_ids)
        ):
            out = self.data
        else:
            out = self._rebuild(remap)
        entry = memo[remap] = (out, out[0], memoryview(out)[RTP_HEADER_SIZE:])
        return entry

    def _rebuild(self, remap: ExtensionRemap) -> bytes:
        data = self.data
        table = remap.table
        assert self.extension_profile is not None
        kept = []
        one_byte = True
        for ext_id, offset, length in extension_elements(
            data, self.extension_start, self.payload_start, self.extension_profile
        ):
            target = table[ext_id]
            if target:
                kept.append((target, offset, length))
                if target > 14 or length == 0 or length > 16:
                    one_byte = False
        if not one_byte and not remap.two_byte:  # keep what the one-byte form can carry
            kept = [(t, o, n) for t, o, n in kept if t <= 14 and 1 <= n <= 16]
            one_byte = True
        out = bytearray(data[: self.csrc_end])
        if kept:
            out[0] |= 0x10
            block = len(out)
            out += b"\x00\x00\x00\x00"  # profile and length, filled in below
            for target, offset, length in kept:
                if one_byte:
                    out.append((target << 4) | (length - 1))
                else:
                    out.append(target)
                    out.append(length)
                out += data[offset : offset + length]
            out += bytes(-(len(out) - block) % 4)
            _EXTENSION_HEADER.pack_into(
                out,
                block,
                ONE_BYTE_PROFILE if one_byte else TWO_BYTE_PROFILE,
                (len(out) - block - 4) // 4,
            )
        else:
            out[0] &= ~0x10
        out += memoryview(data)[self.payload_start :]
        return bytes(out)

    def rewrite(
        self,
        ssrc: int,
        sequence_number: int,
        timestamp: int,
        payload_type: int,
        marker: bool | None = None,
        remap: ExtensionRemap | None = None,
    ) -> bytes:
        """The packet as one subscriber receives it; CSRCs, payload and padding are unchanged.

        `marker` None keeps the publisher's marker bit. `remap` None keeps the extension block
        as is.
        """
        if remap is None or self.extension_profile is None:
            first = self.data[0]
            tail = self._tail
            if tail is None:  # made once, shared by every subscriber of this packet
                tail = self._tail = memoryview(self.data)[RTP_HEADER_SIZE:]
        else:
            memo = self._memo
            entry = memo.get(remap) if memo is not None else None
            if entry is None:
                entry = self._remapped(remap)
            first = entry[1]
            tail = entry[2]
        if marker is None:
            marker = self.marker
        return (
            _pack_fixed(first, (marker << 7) | payload_type, sequence_number, timestamp, ssrc)
            + tail
        )

    def _fixed_header(self, payload_type: int, sequence_number: int, ssrc: int) -> bytes:
        """The 12-byte fixed header with this packet's flags, marker and timestamp."""
        return _pack_fixed(
            self.data[0], (self.marker << 7) | payload_type, sequence_number, self.timestamp, ssrc
        )

    def unwrap_rtx(self, payload_type: int, ssrc: int) -> RtpHeader | None:
        """The original packet carried by this RTX packet (RFC 4588 4), or None if it has none.

        `payload_type` and `ssrc` are the original stream's (the RTX payload type's ``apt`` and
        the SSRC paired with the RTX SSRC). Padding-only RTX packets (bandwidth probes) carry
        no original: None.
        """
        start = self.payload_start
        if self.payload_end - start < 2:
            return None
        data = self.data
        original_sequence = (data[start] << 8) | data[start + 1]
        return RtpHeader(
            b"".join(
                (
                    self._fixed_header(payload_type, original_sequence, ssrc),
                    memoryview(data)[RTP_HEADER_SIZE:start],
                    memoryview(data)[start + 2 :],
                )
            )
        )

    def wrap_rtx(self, payload_type: int, sequence_number: int, ssrc: int) -> bytes:
        """This packet as an RTX retransmission: OSN = this packet's sequence number.

        `sequence_number` comes from the RTX stream's own counter. Wrap the packet as the
        subscriber saw it (after `rewrite`), so the OSN is in the subscriber's numbering.
        """
        data = self.data
        start = self.payload_start
        return b"".join(
            (
                self._fixed_header(payload_type, sequence_number, ssrc),
                memoryview(data)[RTP_HEADER_SIZE:start],
                _OSN.pack(self.sequence_number),
                memoryview(data)[start:],
            )
        )
