"""Micro-benchmark of the media/rtp building blocks against the Python floor, in one run.

    .venv/bin/python bench/rtp_primitives.py [--repeat 9] [--target-ms 40]

Prints JSON (ns per operation, min and median over `repeat` runs) and writes
bench/results/rtp_primitives.json. Packets are 1200 bytes: real first packets of VP8, VP9, H.264,
H.265 and AV1 frames (tests/media/rtp/rtp_samples.py) carrying aiortc's mid and abs-send-time
header extensions. The floor is what every forwarded packet costs per subscriber whatever we do:
pylibsrtp `protect` (what aiortc uses) and a non-blocking UDP `sendto` on 127.0.0.1. The machine
is shared and noisy: compare the ratios to the floor measured in the same run, not absolute ns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pylibsrtp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.rtp import (  # noqa: E402
    ExtensionRemap,
    KeyframeDetector,
    PacketCache,
    RtpHeader,
    StreamOffsets,
)
from media.rtp.header import URI_MID  # noqa: E402
from tests.media.rtp import rtp_samples  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PACKET_SIZE = 1200
BATCH = 64  # packets per timed inner loop
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def sized(payload: bytes, sequence: int) -> bytes:
    """An aiortc-serialized packet of exactly PACKET_SIZE bytes starting with `payload`."""
    probe = rtp_samples.rtp_packets([b""], first_sequence=sequence)[0]
    room = PACKET_SIZE - len(probe)
    body = (payload + bytes(room))[:room]
    return rtp_samples.rtp_packets([body], first_sequence=sequence)[0]


Bench = tuple[str, Callable[[], object], int]  # name, body, operations per call


def calibrate(body: Callable[[], object], target_ms: float) -> int:
    """How many calls of `body` take about `target_ms`."""
    loops = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(loops):
            body()
        elapsed = time.perf_counter_ns() - start
        if elapsed > target_ms * 1e6 / 4 or loops > 1 << 20:
            return max(1, int(loops * target_ms * 1e6 / max(elapsed, 1)))
        loops *= 2


def measure(benches: list[Bench], repeat: int, target_ms: float) -> dict[str, dict[str, float]]:
    """ns per operation, min and median over `repeat` rounds. Rounds interleave the benches, so
    load from other processes on this shared machine hits them all alike."""
    loops = [calibrate(body, target_ms) for _name, body, _ops in benches]
    runs: list[list[float]] = [[] for _ in benches]
    for _ in range(repeat):
        for index, (_name, body, operations) in enumerate(benches):
            start = time.perf_counter_ns()
            for _ in range(loops[index]):
                body()
            elapsed = time.perf_counter_ns() - start
            runs[index].append(elapsed / loops[index] / operations)
    return {
        name: {"min": round(min(r), 1), "median": round(statistics.median(r), 1)}
        for (name, _body, _ops), r in zip(benches, runs, strict=True)
    }


def first_packets() -> dict[str, tuple[bytes, bytes, bytes]]:
    """Per codec: (keyframe start, delta frame start, middle fragment) payloads."""
    sources = {
        "video/vp8": rtp_samples.vp8_frames(),
        "video/vp9": rtp_samples.vp9_frames(),
        "video/h264": rtp_samples.h264_frames(),
        "video/h265": rtp_samples.h265_frames(),
        "video/av1": rtp_samples.av1_frames(),
    }
    out = {}
    for mime, frames in sources.items():
        key = next(f for f in frames if f.keyframe)
        delta = next(f for f in frames if not f.keyframe)
        middle = next(f for f in frames if len(f.payloads) > 2)
        out[mime] = (key.payloads[0], delta.payloads[0], middle.payloads[1])
    out["audio/opus"] = (rtp_samples.opus_payloads(1)[0],) * 3
    return out


def run(repeat: int, target_ms: float) -> dict[str, Any]:
    packets = [sized(bytes(range(256)) * 5, 1000 + i) for i in range(BATCH)]
    assert all(len(p) == PACKET_SIZE for p in packets)
    headers = [RtpHeader(p) for p in packets]
    benches: list[Bench] = []

    def bench(name: str, body: Callable[[], object], operations: int = BATCH) -> None:
        benches.append((name, body, operations))

    def empty_loop() -> None:
        for _data in packets:
            pass

    bench("loop_overhead", empty_loop)

    def parse() -> None:
        for data in packets:
            RtpHeader(data)

    bench("parse", parse)

    def rewrite() -> None:
        for header in headers:
            header.rewrite(0x11223344, 4242, 90000, 100)

    bench("rewrite", rewrite)

    publisher = {URI_MID: 1, ABS_SEND_TIME: 3}
    other_ids = ExtensionRemap.from_uris(publisher, {ABS_SEND_TIME: 5})  # mid dropped, 3 -> 5
    identity = ExtensionRemap({1: 1, 3: 3})
    assert headers[0].remapped(identity) is headers[0].data

    def rewrite_remap_identity() -> None:
        for header in headers:
            header.rewrite(0x11223344, 4242, 90000, 100, remap=identity)

    bench("rewrite_remap_identity", rewrite_remap_identity)

    for header in headers:
        header.remapped(other_ids)

    def rewrite_remap_shared() -> None:
        for header in headers:
            header.rewrite(0x11223344, 4242, 90000, 100, remap=other_ids)

    bench("rewrite_remap_memoised", rewrite_remap_shared)

    def parse_rewrite_remap_first() -> None:
        for data in packets:
            RtpHeader(data).rewrite(0x11223344, 4242, 90000, 100, remap=other_ids)

    bench("parse_and_rewrite_remap_rebuild", parse_rewrite_remap_first)

    offsets = StreamOffsets(90000, initial_sequence=1, initial_timestamp=1)
    sequence = [0]

    def map_sequence() -> None:
        base = sequence[0]
        for i in range(BATCH):
            offsets.map(0xABCD, (base + i) & 0xFFFF, 3000 * (base + i), 0.0)
        sequence[0] = (base + BATCH) & 0xFFFF

    bench("offsets_map", map_sequence)

    subscriber = StreamOffsets(90000, initial_sequence=1, initial_timestamp=1)

    def map_and_rewrite() -> None:
        for header in headers:
            mapped = subscriber.map(header.ssrc, header.sequence_number, header.timestamp, 0.0)
            if mapped is not None:
                header.rewrite(0x11223344, mapped[0], mapped[1], 100)

    bench("map_and_rewrite", map_and_rewrite)

    def parse_map_rewrite() -> None:
        for data in packets:
            header = RtpHeader(data)
            mapped = subscriber.map(header.ssrc, header.sequence_number, header.timestamp, 0.0)
            if mapped is not None:
                header.rewrite(0x11223344, mapped[0], mapped[1], 100)

    bench("parse_map_rewrite_one_subscriber", parse_map_rewrite)

    for mime, (key, delta, middle) in first_packets().items():
        detector = KeyframeDetector(mime)
        inspect = detector.inspect
        for kind, payload in (("key", key), ("delta", delta), ("middle", middle)):
            data = sized(payload, 1)
            header = RtpHeader(data)
            start, end = header.payload_start, header.payload_end
            batch = [data] * BATCH

            def keyframe_check(batch: list[bytes] = batch, start: int = start, end: int = end,
                               inspect: Any = inspect) -> None:
                for item in batch:
                    inspect(item, start, end)

            bench(f"keyframe_{mime.split('/')[1]}_{kind}", keyframe_check)
            if mime == "audio/opus":
                break

    cache = PacketCache(capacity=1024)
    counter = [0]

    def cache_put() -> None:
        base = counter[0]
        for i, data in enumerate(packets):
            cache.put((base + i) & 0xFFFF, data, 0.0)
        counter[0] = base + BATCH

    bench("cache_put", cache_put)
    lookup = PacketCache(capacity=1024)  # a separate, full cache: every get is a hit
    for i, data in enumerate(packets * 4):
        lookup.put(i, data, 0.0)
    wanted = [len(packets) * 4 - 1 - i * 3 for i in range(BATCH)]
    assert all(lookup.get(s, 0.0) is not None for s in wanted)

    def cache_get() -> None:
        for seq in wanted:
            lookup.get(seq, 0.0)

    bench("cache_get", cache_get)

    def rtx_wrap() -> None:
        for header in headers:
            header.wrap_rtx(97, 5, 0x5555)

    bench("rtx_wrap", rtx_wrap)

    # the floor: SRTP protect (pylibsrtp, as aiortc) and a non-blocking sendto on loopback
    policy = pylibsrtp.Policy(key=os.urandom(30), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    srtp = pylibsrtp.Session(policy)
    outgoing = [h.rewrite(0x11223344, i, 90000, 100) for i, h in enumerate(headers)]

    def protect() -> None:
        for data in outgoing:
            srtp.protect(data)

    bench("floor_srtp_protect", protect)
    protected = [srtp.protect(d) for d in outgoing]
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    address = receiver.getsockname()
    refused = [0]

    def sendto() -> None:
        send = sender.sendto
        for data in protected:
            try:
                send(data, address)
            except BlockingIOError:
                refused[0] += 1

    bench("floor_udp_sendto", sendto)

    # the whole loop for 10 subscribers of one packet: parse once, then per subscriber map,
    # rewrite, protect, sendto (no remap; separate sessions as separate transports would have)
    subscribers = []
    for n in range(10):
        sub_policy = pylibsrtp.Policy(key=os.urandom(30),
                                      ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        sub_policy.allow_repeat_tx = True
        subscribers.append((StreamOffsets(90000), pylibsrtp.Session(sub_policy), 0x1000 + n))

    def fan_out() -> None:
        send = sender.sendto
        for data in packets[:BATCH // 10 + 1]:
            header = RtpHeader(data)
            for offsets_, session, ssrc in subscribers:
                mapped = offsets_.map(header.ssrc, header.sequence_number, header.timestamp, 0.0)
                if mapped is None:
                    continue
                try:
                    send(session.protect(header.rewrite(ssrc, mapped[0], mapped[1], 100)),
                         address)
                except BlockingIOError:
                    refused[0] += 1

    # the loop does (BATCH // 10 + 1) packets x 10 subscribers per call
    bench("fan_out_per_packet_per_subscriber", fan_out, (BATCH // 10 + 1) * 10)
    results = measure(benches, repeat, target_ms)
    receiver.close()
    sender.close()

    floor = results["floor_srtp_protect"]["min"] + results["floor_udp_sendto"]["min"]
    protect_floor = results["floor_srtp_protect"]["min"]
    per_subscriber = results["map_and_rewrite"]["min"]
    report = {
        "packet_size": PACKET_SIZE,
        "python": sys.version.split()[0],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
        "ns_per_operation": results,
        "floor_ns": {"srtp_protect": protect_floor,
                     "udp_sendto": results["floor_udp_sendto"]["min"], "sum": round(floor, 1)},
        "ratio_to_srtp_protect": {
            name: round(value["min"] / protect_floor, 3) for name, value in results.items()
        },
        "summary": {
            "per_subscriber_map_and_rewrite_ns": per_subscriber,
            "parse_once_ns": results["parse"]["min"],
            "parse_plus_rewrite_ns": round(results["parse"]["min"] + results["rewrite"]["min"], 1),
            "per_subscriber_overhead_over_floor": round(per_subscriber / floor, 3),
            "fan_out_total_over_floor": round(
                results["fan_out_per_packet_per_subscriber"]["min"] / floor, 3),
            "target_parse_plus_rewrite_ns": 1500,
            "sendto_refused": refused[0],
        },
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--target-ms", type=float, default=40.0, help="time per run")
    args = parser.parse_args()
    report = run(args.repeat, args.target_ms)
    text = json.dumps(report, indent=2)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rtp_primitives.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
