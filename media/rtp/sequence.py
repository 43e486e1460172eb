"""One subscriber's continuous RTP numbering over changing sources and deliberate skips.

A subscriber sees one SSRC whose sequence numbers go up by one per packet and whose timestamps
follow the media clock, whatever happens upstream: `StreamOffsets.map()` turns each forwarded
source packet's ``(ssrc, sequence number, timestamp)`` into the subscriber's ``(sequence number,
timestamp)``.

The mapping is piecewise: a *segment* is a run of one source's packets with a constant sequence
offset and timestamp offset. A new segment starts

- when the source SSRC changes (a new publisher on the track): the output sequence continues at
  the last output + 1, the output timestamp at the last output timestamp plus the wall-clock time
  since that packet in clock-rate units (at least 1);
- when the caller passes ``resync=True`` after skipping packets on purpose (a slow subscriber
  jumping to the next keyframe): the sequence continues at the last output + 1, so the receiver
  sees no gap to NACK, and the timestamp offset stays (the source's timestamps already include
  the skipped time).

Inside a segment sequence numbers are extended (16-bit wraparound) against the highest one seen,
so reordered packets keep their order in the output too. A late packet that belongs to the
previous segment (within 1024 packets of where it ended) is mapped with that segment's offsets if
it falls inside what that segment covered, and dropped (None) if it falls into a skipped range;
packets of older sources are dropped.

`source_of()` maps an output sequence number back to the source packet (to answer a NACK from the
per-track packet cache) over the last `history` segments.
"""

from __future__ import annotations

import random
from collections import deque
from typing import NamedTuple

_SEQ_MOD = 1 << 16
_TS_MASK = 0xFFFFFFFF
#: How far behind the end of the previous segment a packet of that segment's source may be and
#: still count as a late (reordered) packet of it rather than the start of a new segment.
_LATE_WINDOW = 1024


class Segment(NamedTuple):
    ssrc: int
    #: extended source sequence numbers covered (first, highest), in that source's numbering
    first: int
    last: int
    sequence_offset: int
    timestamp_offset: int


class StreamOffsets:
    """Source (ssrc, seq, ts) -> output (seq, ts) for one subscriber stream at `clock_rate` Hz."""

    __slots__ = (
        "_first",
        "_high",
        "_last_time",
        "_last_ts",
        "_out_high",
        "_segments",
        "_seq_offset",
        "_ts_offset",
        "clock_rate",
        "ssrc",
    )

    def __init__(
        self,
        clock_rate: int,
        *,
        initial_sequence: int | None = None,
        initial_timestamp: int | None = None,
        history: int = 32,
    ) -> None:
        """Output starts at `initial_sequence` / `initial_timestamp` (random, per RFC 3550 5.1,
        if None)."""
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        #: the current source SSRC, None before the first packet
        self.ssrc: int | None = None
        first_seq = random.getrandbits(16) if initial_sequence is None else initial_sequence
        # extended output numbers start one wrap up, so extension arithmetic never goes negative
        self._out_high = _SEQ_MOD + (first_seq & 0xFFFF) - 1
        self._last_ts = (
            random.getrandbits(32) if initial_timestamp is None else initial_timestamp & _TS_MASK
        )
        self._last_time = 0.0
        self._first = 0  # current segment: extended source sequence of its first packet
        self._high = 0  # ... and of its highest packet
        self._seq_offset = 0
        self._ts_offset = 0
        self._segments: deque[Segment] = deque(maxlen=max(1, history))

    @property
    def sequence_number(self) -> int:
        """The highest output sequence number so far (the one before the first, initially)."""
        return self._out_high & 0xFFFF

    def map(
        self, ssrc: int, sequence_number: int, timestamp: int, now: float, resync: bool = False
    ) -> tuple[int, int] | None:
        """Output ``(sequence number, timestamp)`` for a source packet, or None to drop it.

        `now` is the caller's clock (e.g. `time.monotonic()`) in seconds, used across source
        switches. A duplicate gets the same output as the first copy.
        """
        if ssrc == self.ssrc and not resync:
            high = self._high
            ahead = (sequence_number - high) & 0xFFFF
            if ahead < 0x8000:
                out_ts = (timestamp + self._ts_offset) & _TS_MASK
                if ahead:
                    extended = high + ahead
                    self._high = extended
                    self._last_ts = out_ts
                    self._last_time = now
                    out = extended + self._seq_offset
                    self._out_high = out
                    return out & 0xFFFF, out_ts
                return (high + self._seq_offset) & 0xFFFF, out_ts
            extended = high + ahead - _SEQ_MOD
            if extended >= self._first:
                return (
                    (extended + self._seq_offset) & 0xFFFF,
                    (timestamp + self._ts_offset) & _TS_MASK,
                )
            if self._segments and self._segments[-1].ssrc == ssrc:
                return self._late(self._segments[-1], extended, timestamp)
            return None
        if self.ssrc is not None and not resync and self._segments:
            previous = self._segments[-1]
            if previous.ssrc == ssrc:
                behind = (previous.last - sequence_number) & 0xFFFF
                if behind < _LATE_WINDOW:  # just behind where we left that source: late
                    return self._late(previous, previous.last - behind, timestamp)
        return self._start_segment(ssrc, sequence_number, timestamp, now)

    @staticmethod
    def _late(segment: Segment, extended: int, timestamp: int) -> tuple[int, int] | None:
        if not segment.first <= extended <= segment.last:
            return None  # skipped on purpose, or from before that segment
        return (
            (extended + segment.sequence_offset) & 0xFFFF,
            (timestamp + segment.timestamp_offset) & _TS_MASK,
        )

    def _start_segment(
        self, ssrc: int, sequence_number: int, timestamp: int, now: float
    ) -> tuple[int, int]:
        if self.ssrc is not None:
            self._segments.append(
                Segment(self.ssrc, self._first, self._high, self._seq_offset, self._ts_offset)
            )
        if ssrc == self.ssrc:
            # resync on the same source: its numbering continues, always forwards
            ahead = (sequence_number - self._high) & 0xFFFF
            extended = self._high + (ahead or _SEQ_MOD)
            out_ts = (timestamp + self._ts_offset) & _TS_MASK
        else:
            extended = _SEQ_MOD + sequence_number
            if self.ssrc is None:
                out_ts = self._last_ts
            else:
                gap = round((now - self._last_time) * self.clock_rate)
                out_ts = (self._last_ts + max(1, gap)) & _TS_MASK
            self._ts_offset = (out_ts - timestamp) & _TS_MASK
            self.ssrc = ssrc
        out = self._out_high + 1
        self._first = self._high = extended
        self._seq_offset = out - extended
        self._out_high = out
        self._last_ts = out_ts
        self._last_time = now
        return out & 0xFFFF, out_ts

    def rtp_timestamp(self, now: float) -> int:
        """The output timestamp that corresponds to `now` (for sender reports)."""
        return (self._last_ts + round((now - self._last_time) * self.clock_rate)) & _TS_MASK

    def source_of(self, sequence_number: int) -> tuple[int, int] | None:
        """``(source ssrc, source sequence number)`` of an output packet already sent, or None
        if it is older than the kept history or was never sent."""
        if self.ssrc is None:
            return None
        out = self._out_high - ((self._out_high - sequence_number) & 0xFFFF)
        first_out = self._first + self._seq_offset
        if out >= first_out:
            return self.ssrc, (out - self._seq_offset) & 0xFFFF
        for segment in reversed(self._segments):
            if out >= segment.first + segment.sequence_offset:
                source = out - segment.sequence_offset
                if source > segment.last:
                    return None
                return segment.ssrc, source & 0xFFFF
        return None
