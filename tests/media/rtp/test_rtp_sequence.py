"""media.rtp.sequence: one subscriber's output numbering across wraps, skips and source switches."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp.sequence import StreamOffsets

A, B = 0xAAAA0001, 0xBBBB0002


def offsets(seq: int = 100, ts: int = 5000, clock: int = 90000) -> StreamOffsets:
    return StreamOffsets(clock, initial_sequence=seq, initial_timestamp=ts)


def test_first_packet_starts_at_the_initial_values_then_follows_the_source() -> None:
    stream = offsets()
    assert stream.ssrc is None and stream.sequence_number == 99
    assert stream.map(A, 40000, 123456, now=0.0) == (100, 5000)
    assert stream.map(A, 40001, 126456, now=0.033) == (101, 8000)
    assert stream.map(A, 40003, 129456, now=0.066) == (103, 11000)  # upstream loss shows
    assert stream.ssrc == A and stream.sequence_number == 103


def test_random_initial_values_differ() -> None:
    starts = {StreamOffsets(90000).map(A, 1, 1, 0.0) for _ in range(8)}
    assert len(starts) > 1
    with pytest.raises(ValueError):
        StreamOffsets(0)


def test_source_and_output_wrap_around() -> None:
    stream = offsets(seq=65534, ts=0xFFFFFF00)
    outputs = [stream.map(A, (65533 + i) & 0xFFFF, (0xFFFFFFF0 + 3000 * i) & 0xFFFFFFFF, i / 30)
               for i in range(6)]
    assert [o[0] for o in outputs if o] == [65534, 65535, 0, 1, 2, 3]
    assert [o[1] for o in outputs if o] == [(0xFFFFFF00 + 3000 * i) & 0xFFFFFFFF for i in range(6)]


def test_reordered_packets_keep_their_place() -> None:
    stream = offsets()
    stream.map(A, 65535, 0, 0.0)
    assert stream.map(A, 2, 0, 0.01) == (103, 5000)  # 0 and 1 still in flight, across the wrap
    assert stream.map(A, 0, 0, 0.02) == (101, 5000)
    assert stream.map(A, 1, 0, 0.03) == (102, 5000)
    assert stream.map(A, 2, 0, 0.04) == (103, 5000)  # duplicate: same output
    assert stream.sequence_number == 103


def test_switch_continues_sequence_and_advances_time() -> None:
    stream = offsets(clock=90000)
    stream.map(A, 10, 1000, now=10.0)
    assert stream.map(A, 11, 4000, now=10.1) == (101, 8000)
    # a new publisher 0.5 s later, with its own random bases
    assert stream.map(B, 60000, 777, now=10.6) == (102, 8000 + 45000)
    assert stream.map(B, 60001, 777 + 3000, now=10.633) == (103, 56000)
    assert stream.ssrc == B
    # back-to-back switch at the same instant: timestamps still move forward
    assert stream.map(A, 500, 42, now=10.633) == (104, 56001)


def test_audio_switch_uses_its_clock_rate() -> None:
    stream = offsets(ts=0, clock=48000)
    stream.map(A, 1, 0, now=0.0)
    assert stream.map(B, 9, 123, now=0.25) == (101, 12000)


def test_resync_after_a_deliberate_skip_leaves_no_gap() -> None:
    stream = offsets()
    for i in range(5):
        stream.map(A, 1000 + i, 3000 * (i // 2), now=i / 60)
    # packets 1005..1019 skipped (slow subscriber), resume at the keyframe 1020
    assert stream.map(A, 1020, 30000, now=0.5, resync=True) == (105, 35000)
    assert stream.map(A, 1021, 30000, now=0.51) == (106, 35000)
    # a late packet from the skipped range is dropped, one from before the skip still maps
    assert stream.map(A, 1010, 15000, now=0.52) is None
    assert stream.map(A, 1003, 3000, now=0.52) == (103, 8000)
    assert stream.map(A, 990, 0, now=0.52) is None  # before anything this stream sent


def test_resync_at_the_same_sequence_number_still_moves_forward() -> None:
    stream = offsets()
    stream.map(A, 7, 0, 0.0)
    assert stream.map(A, 7, 0, 0.1, resync=True) == (101, 5000)
    assert stream.map(A, 8, 0, 0.2) == (102, 5000)


def test_late_packets_around_a_switch() -> None:
    stream = offsets()
    stream.map(A, 10, 0, 0.0)
    stream.map(A, 12, 0, 0.01)  # 11 is late
    stream.map(B, 500, 9000, 0.02)
    assert stream.map(A, 11, 0, 0.03) == (101, 5000)  # belongs to A's segment
    assert stream.map(A, 9, 0, 0.03) is None  # before A's segment
    assert stream.map(B, 499, 9000, 0.03) is None  # before the switch point of B
    # A returns with newer packets: a new segment, contiguous
    assert stream.map(A, 13, 0, 0.04) == (104, 5900 + 1800)  # B's last + 20 ms


def test_source_of_maps_back_across_segments() -> None:
    stream = offsets(seq=65534)
    sent = []
    for i in range(4):
        sent.append((stream.map(A, 100 + i, 0, 0.0), (A, 100 + i)))
    sent.append((stream.map(A, 200, 0, 0.1, resync=True), (A, 200)))
    for i in range(3):
        sent.append((stream.map(B, 65534 + i & 0xFFFF, 0, 0.2), (B, 65534 + i & 0xFFFF)))
    for mapped, source in sent:
        assert mapped is not None
        assert stream.source_of(mapped[0]) == source
    assert stream.source_of(7) is None  # never sent
    assert offsets().source_of(100) is None


def test_source_of_forgets_beyond_its_history() -> None:
    stream = StreamOffsets(90000, initial_sequence=0, initial_timestamp=0, history=2)
    for i in range(6):
        stream.map(A if i % 2 else B, 10 * i, 0, float(i))
    assert stream.source_of(5) == (A, 50)  # current segment
    assert stream.source_of(4) == (B, 40)
    assert stream.source_of(3) == (A, 30)
    assert stream.source_of(2) is None  # older segments are no longer kept


def test_rtp_timestamp_follows_the_clock() -> None:
    stream = offsets(ts=1000)
    stream.map(A, 1, 50, now=2.0)
    assert stream.rtp_timestamp(2.0) == 1000
    assert stream.rtp_timestamp(3.5) == 1000 + 135000
    assert offsets(ts=0xFFFFFFFF).rtp_timestamp(1 / 90000) == 0


# --- property: continuity ------------------------------------------------------------------


@dataclass
class Source:
    ssrc: int
    seq: int
    ts: int


events = st.lists(
    st.one_of(
        st.tuples(st.just("next"), st.integers(1, 4)),  # n packets in order
        st.tuples(st.just("skip"), st.integers(1, 70000)),  # source packets not forwarded
        st.tuples(st.just("switch"), st.integers(0, 2**16 - 1)),
        st.tuples(st.just("pause"), st.integers(1, 5000)),  # milliseconds of silence
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    events,
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.sampled_from([8000, 48000, 90000]),
)
def test_output_sequence_is_contiguous_whatever_the_sources_do(
    script: list[tuple[str, int]],
    first_out: int,
    first_ts: int,
    source_seq: int,
    source_ts: int,
    clock: int,
) -> None:
    stream = StreamOffsets(clock, initial_sequence=first_out, initial_timestamp=first_ts)
    source = Source(1, source_seq, source_ts)
    now = 0.0
    last_sent_at = 0.0
    resync = False
    switching = False
    last: tuple[int, int] | None = None
    sent: list[tuple[int, int, int]] = []  # (output seq, source ssrc, source seq)
    ts_offset = 0
    for kind, value in script:
        if kind == "next":
            for _ in range(value):
                now += 0.01
                source.seq = (source.seq + 1) & 0xFFFF
                source.ts = (source.ts + clock // 100) & 0xFFFFFFFF
                mapped = stream.map(source.ssrc, source.seq, source.ts, now, resync=resync)
                assert mapped is not None
                if last is None:
                    assert mapped == (first_out, first_ts)
                else:
                    assert mapped[0] == (last[0] + 1) & 0xFFFF
                    if switching:  # first packet of a new source: wall-clock gap
                        gap = max(1, round((now - last_sent_at) * clock))
                        assert mapped[1] == (last[1] + gap) & 0xFFFFFFFF
                    else:  # same source (also after a skip): constant timestamp offset
                        assert (mapped[1] - source.ts) & 0xFFFFFFFF == ts_offset
                ts_offset = (mapped[1] - source.ts) & 0xFFFFFFFF
                last = mapped
                last_sent_at = now
                sent.append((mapped[0], source.ssrc, source.seq))
                resync = switching = False
        elif kind == "skip":
            source.seq = (source.seq + value) & 0xFFFF
            source.ts = (source.ts + value * 30) & 0xFFFFFFFF
            resync = True
        elif kind == "switch":
            source = Source(source.ssrc + 1, value, (value * 7919) & 0xFFFFFFFF)
            switching = last is not None
        else:
            now += value / 1000
    for out_seq, ssrc, seq in sent:
        assert stream.source_of(out_seq) in ((ssrc, seq), None)
    if sent:
        out_seq, ssrc, seq = sent[-1]
        assert stream.source_of(out_seq) == (ssrc, seq)
