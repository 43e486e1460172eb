"""Punch signalling benchmark against a real `mediagate serve` subprocess (SQLite).

    .venv/bin/python bench/brokerage_signalling.py [--samples 200] [--max-sessions 1000]

1. WebSocket round trip: a registered peer re-sends `register` and waits for the
   `registered` reply (parse, schema check, a database transaction, the reply), and an
   admin's `tally` until the peer receives the broadcast; median / p95 / max in ms.
2. Concurrent sessions with two connected peers: sessions are added in steps (each one
   created over HTTP, two WebSockets registering on its stream, both reporting
   `status: connected`, the session CONNECTED) up to `--max-sessions`; at each step the
   server's RSS and a round trip measured with all of them held open.

Prints JSON and writes bench/results/brokerage_signalling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server import start_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


class Session:
    def __init__(self, http: httpx.AsyncClient, ws_base: str, name: str) -> None:
        self.http, self.ws_base, self.name = http, ws_base, name
        self.admin = ""
        self.peer_token = ""
        self.peers: list[Any] = []

    async def open(self) -> None:
        reply = await self.http.post("/api/session", json={"name": self.name})
        reply.raise_for_status()
        self.admin = reply.json()["token"]
        page = await self.http.get(f"/s/{self.name}")
        config = json.loads(re.search(r"const CFG = (\{.*?\});", page.text).group(1))
        self.peer_token = config["peerTokens"]["default"]
        for port in (20000, 20002):
            ws = await websockets.connect(f"{self.ws_base}/api/ws/{self.name}?t={self.peer_token}",
                                          open_timeout=60, ping_interval=None)
            self.peers.append(ws)
            await ws.send(json.dumps({"type": "register", "port": port}))
            await expect(ws, "registered")
        for ws in self.peers:
            await expect(ws, "peer")
            await ws.send(json.dumps({"type": "status", "srt": "connected"}))
        await expect(self.peers[0], "state", state="CONNECTED")

    async def close(self) -> None:
        for ws in self.peers:
            await ws.close()


async def expect(ws: Any, kind: str, **fields: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
            return message


async def register_rtt(ws: Any, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "register", "port": 20000}))
        await expect(ws, "registered")
        times.append(time.perf_counter() - start)
        await expect(ws, "peer")  # a re-register re-announces the match
    return times


async def tally_latency(admin_ws: Any, peer_ws: Any, samples: int) -> list[float]:
    times = []
    for index in range(samples):
        state = ("off", "preview", "program")[index % 3]
        start = time.perf_counter()
        await admin_ws.send(json.dumps({"type": "tally", "stream": "default", "state": state}))
        await expect(peer_ws, "tally", state=state)
        times.append(time.perf_counter() - start)
    return times


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="punch-bench-")) / "data"
    server = start_server(data_dir, env={"PUNCH_RATE_LIMIT": "0",
                                         "MEDIAGATE_LOG_LEVEL": "WARNING"})
    process = psutil.Process(server.process.pid)
    ws_base = server.base_url.replace("http://", "ws://")
    result: dict[str, Any] = {"benchmark": "brokerage_signalling", "database": "sqlite"}
    sessions: list[Session] = []
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            probe = Session(http, ws_base, "probe")
            await probe.open()
            sessions.append(probe)
            admin_ws = await websockets.connect(
                f"{ws_base}/api/ws/probe?t={probe.admin}", ping_interval=None)
            await expect(admin_ws, "state")
            await register_rtt(probe.peers[0], 20)  # warm-up
            result["register_round_trip"] = summary(
                await register_rtt(probe.peers[0], args.samples))
            result["tally_broadcast"] = summary(
                await tally_latency(admin_ws, probe.peers[1], args.samples))

            steps = []
            target = args.step
            started = time.perf_counter()
            while target <= args.max_sessions:
                step_start = time.perf_counter()
                try:
                    while len(sessions) - 1 < target:
                        batch = [Session(http, ws_base, f"s{len(sessions) + i}")
                                 for i in range(min(25, target - (len(sessions) - 1)))]
                        await asyncio.gather(*(s.open() for s in batch))
                        sessions.extend(batch)
                except Exception as exc:
                    steps.append({"sessions": len(sessions) - 1, "failed": repr(exc)})
                    break
                rtt = summary(await register_rtt(probe.peers[0], 30))
                steps.append({
                    "sessions": len(sessions) - 1,
                    "websockets": 2 * (len(sessions) - 1),
                    "setup_s": round(time.perf_counter() - step_start, 2),
                    "server_rss_mb": round(process.memory_info().rss / 2**20, 1),
                    "register_round_trip_under_load": rtt,
                })
                print(json.dumps(steps[-1]), file=sys.stderr)
                target *= 2
            result["concurrent_connected_sessions"] = {
                "held": max((s["sessions"] for s in steps if "failed" not in s), default=0),
                "limit_tested": args.max_sessions,
                "total_setup_s": round(time.perf_counter() - started, 1),
                "steps": steps,
            }
            await admin_ws.close()
    finally:
        for session in sessions:
            await session.close()
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--step", type=int, default=125)
    parser.add_argument("--max-sessions", type=int, default=1000)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "brokerage_signalling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
