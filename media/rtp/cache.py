"""The recent packets of one source stream, to answer NACKs (RFC 4585 6.2.1) without the publisher.

A ring of `capacity` slots (a power of two) indexed by the extended sequence number: `put()` and
`get()` are O(1) list indexing, no hashing, no allocation beyond the stored reference. Only the
last `capacity` sequence numbers up to the highest one stored are answered; a slot holds its
extended sequence number, so a lookup never returns a packet from an earlier lap of the ring, and
its arrival time, so packets older than `max_age` seconds are not resent (a
retransmission that late only arrives after the receiver's jitter buffer gave up on it).

One cache per source SSRC: a new publisher on the track gets a new cache (or `clear()`).
Expand NACK feedback into sequence numbers with `media.rtp.rtcp.nack_sequence_numbers`, map a
subscriber's sequence numbers back to the source's with `StreamOffsets.source_of`.
"""

from __future__ import annotations

from collections.abc import Iterable

_SEQ_MOD = 1 << 16


class PacketCache:
    """Packets by sequence number, bounded by count and age."""

    __slots__ = ("_high", "_mask", "_packets", "_sequences", "_times", "max_age")

    def __init__(self, capacity: int = 1024, max_age: float = 1.0) -> None:
        if not 1 <= capacity <= 1 << 15:
            raise ValueError("capacity must be between 1 and 32768")
        size = 1 << (capacity - 1).bit_length()
        self._mask = size - 1
        self._sequences = [-1] * size
        self._packets: list[bytes | None] = [None] * size
        self._times = [0.0] * size
        self._high = -1
        self.max_age = max_age

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def put(self, sequence_number: int, packet: bytes, now: float) -> int:
        """Store `packet`; returns its extended sequence number (wraps counted).

        A packet older than the ring still gets its extended number but is not stored.
        """
        high = self._high
        if high < 0:
            extended = _SEQ_MOD + sequence_number
        else:
            ahead = (sequence_number - high) & 0xFFFF
            extended = high + ahead if ahead < 0x8000 else high + ahead - _SEQ_MOD
        if extended > high:
            self._high = extended
        elif high - extended > self._mask:
            return extended
        index = extended & self._mask
        self._sequences[index] = extended
        self._packets[index] = packet
        self._times[index] = now
        return extended

    def get(self, sequence_number: int, now: float) -> bytes | None:
        """The packet with this sequence number (any int; taken mod 2^16), if still held."""
        high = self._high
        behind = (high - sequence_number) & 0xFFFF
        if behind > self._mask:  # older than the last `capacity` sequence numbers
            return None
        extended = high - behind
        index = extended & self._mask
        if self._sequences[index] != extended or now - self._times[index] > self.max_age:
            return None
        return self._packets[index]

    def get_many(self, sequence_numbers: Iterable[int], now: float) -> list[bytes]:
        """The packets still held, in the order asked, missing ones left out."""
        found = []
        for sequence_number in sequence_numbers:
            packet = self.get(sequence_number, now)
            if packet is not None:
                found.append(packet)
        return found

    def clear(self) -> None:
        size = self._mask + 1
        self._sequences = [-1] * size
        self._packets = [None] * size
        self._times = [0.0] * size
        self._high = -1
