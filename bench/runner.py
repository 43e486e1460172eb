"""Gateway side of bench/fanout.py: a MediaCore (or aiortc's decode + re-encode MediaRelay, for
comparison) in its own process, driven over a tiny JSON-lines protocol on a loopback socket.

    python bench/runner.py [--relay]     # prints "PORT <n>" then serves until stdin closes

Requests (one JSON object per line, one reply line each):
    {"op": "publish", "offer": sdp}                  -> {"answer": sdp, "peer": id, "tracks": [...]}
    {"op": "subscribe", "offer": sdp, "tracks": [..]} -> {"answer": sdp, "peer": id}
    {"op": "close", "peer": id}                      -> {}
    {"op": "usage"}                                  -> {"cpu": seconds, "rss": bytes}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media import MediaConfig, MediaCore
from tests.rtc import local_peer_connection


def loopback_only() -> None:
    # aioice skips 127.0.0.1 when gathering; the benchmark must stay on loopback.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore[assignment]


def usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return {"cpu": ru.ru_utime + ru.ru_stime, "rss": rss_pages * os.sysconf("SC_PAGE_SIZE")}


class CoreGateway:
    def __init__(self) -> None:
        self.core = MediaCore(MediaConfig(periodic_pli=None))

    async def start(self) -> None:
        await self.core.start()

    async def publish(self, offer: str) -> dict[str, Any]:
        peer = await self.core.create_peer()
        answer = await peer.accept_offer(offer, publish_prefix="bench")
        tracks = [t.track_id for t in self.core.list_tracks("bench/")]
        return {"answer": answer, "peer": peer.id, "tracks": tracks}

    async def subscribe(self, offer: str, tracks: list[str]) -> dict[str, Any]:
        peer = await self.core.create_peer()
        return {"answer": await peer.accept_offer(offer, subscribe=tracks), "peer": peer.id}

    async def close(self, peer_id: str) -> None:
        peer = self.core.get_peer(peer_id)
        if peer is not None:
            await peer.close()

    async def stop(self) -> None:
        await self.core.stop()


class RelayGateway:
    """aiortc's stock path: decode the publisher's track, re-encode per subscriber."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.tracks: dict[str, MediaStreamTrack] = {}

    async def start(self) -> None:
        pass

    async def publish(self, offer: str) -> dict[str, Any]:
        pc = local_peer_connection()
        peer_id = uuid.uuid4().hex
        self.pcs[peer_id] = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[f"bench/{track.kind}"] = track

        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"answer": pc.localDescription.sdp, "peer": peer_id, "tracks": list(self.tracks)}

    async def subscribe(self, offer: str, tracks: list[str]) -> dict[str, Any]:
        pc = local_peer_connection()
        peer_id = uuid.uuid4().hex
        self.pcs[peer_id] = pc
        for track_id in tracks:
            pc.addTrack(self.relay.subscribe(self.tracks[track_id]))
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"answer": pc.localDescription.sdp, "peer": peer_id}

    async def close(self, peer_id: str) -> None:
        pc = self.pcs.pop(peer_id, None)
        if pc is not None:
            await pc.close()

    async def stop(self) -> None:
        for peer_id in list(self.pcs):
            await self.close(peer_id)


class LoopLag:
    """Event-loop lag of this process: how late a 10 ms sleep wakes up."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            self.samples.append(time.monotonic() - started - 0.01)

    def take(self) -> dict[str, float]:
        samples, self.samples = sorted(self.samples), []
        if not samples:
            return {}
        return {
            "lag_p50_ms": 1000 * samples[len(samples) // 2],
            "lag_p99_ms": 1000 * samples[int(len(samples) * 0.99)],
            "lag_max_ms": 1000 * samples[-1],
        }


async def serve(gateway: CoreGateway | RelayGateway) -> None:
    await gateway.start()
    lag = LoopLag()
    lag_task = asyncio.get_running_loop().create_task(lag.run())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            op = request["op"]
            reply: dict[str, Any] = {}
            try:
                if op == "publish":
                    reply = await gateway.publish(request["offer"])
                elif op == "subscribe":
                    reply = await gateway.subscribe(request["offer"], request["tracks"])
                elif op == "close":
                    await gateway.close(request["peer"])
                elif op == "usage":
                    reply = usage()
                elif op == "lag":
                    reply = lag.take()
                elif op == "stats" and isinstance(gateway, CoreGateway):
                    reply = (await gateway.core.sample_stats()).as_dict()
            except Exception as exc:
                reply = {"error": repr(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # run until the driver closes our stdin
    server.close()
    lag_task.cancel()
    await gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay", action="store_true", help="decode + re-encode (MediaRelay)")
    args = parser.parse_args()
    loopback_only()
    asyncio.run(serve(RelayGateway() if args.relay else CoreGateway()))


if __name__ == "__main__":
    main()
