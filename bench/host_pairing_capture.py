"""punktfunk host numbers: stats-capture accuracy against a real aiortc publisher with two
viewers, and the time of the SPAKE2 and GameStream pairing ceremonies (loopback, in-process).

    .venv/bin/python bench/host_pairing_capture.py [--seconds 10]    # prints JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aioice.ice
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.settings import Settings
from tests.host.test_gamestream import MoonlightClient
from tests.host.test_native import spake2_pair
from tests.host.test_stats import _bytes_sent, _publish
from tests.media.media_clients import Subscriber
from tests.pg import free_port

TOKEN = "bench-mgmt-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def capture_accuracy(app: Any, seconds: float) -> dict[str, Any]:
    core = app.extensions["mediagate"].media
    client = app.test_client()
    publisher, track_id = await _publish(core)
    viewers = [Subscriber(kinds=("video",)) for _ in range(2)]
    try:
        for viewer in viewers:
            await viewer.play(await core.create_peer(), [track_id])
        await asyncio.sleep(3)
        await client.post("/api/v1/stats/capture/start", headers=AUTH)
        sent0, t0 = await _bytes_sent(publisher), time.monotonic()
        await asyncio.sleep(seconds)
        live = await (await client.get("/api/v1/stats/capture/live", headers=AUTH)).get_json()
        sent1, t1 = await _bytes_sent(publisher), time.monotonic()
        await client.post("/api/v1/stats/capture/stop", headers=AUTH)
    finally:
        for viewer in viewers:
            await viewer.pc.close()
        await publisher.close()
    samples = live["samples"]
    real = 8 * (sent1 - sent0) / (t1 - t0) / 1000
    ingest = statistics.mean(s["bitrate_kbps"] for s in samples)
    sent = statistics.mean(s["mbps"] for s in samples) * 1000
    return {
        "samples": len(samples),
        "publisher_kbps": round(real, 1),
        "captured_ingest_kbps": round(ingest, 1),
        "ingest_error_pct": round(100 * (ingest - real) / real, 2),
        "captured_transmit_kbps_2_viewers": round(sent, 1),
        "transmit_error_pct": round(100 * (sent - 2 * real) / (2 * real), 2),
        "fps_mean": round(statistics.mean(s["fps"] for s in samples), 2),
        "receive_p50_ms_mean": round(statistics.mean(
            st["p50_us"] for s in samples for st in s["stages"] if st["name"] == "receive")
            / 1000, 2),
    }


async def native_pairing(app: Any, runs: int) -> dict[str, Any]:
    client = app.test_client()
    base = f"http://127.0.0.1:{app.extensions['mediagate'].settings.gamestream_http_port}"
    times = []
    for index in range(runs):
        armed = await (await client.post("/api/v1/native/pair/arm", json={},
                                         headers=AUTH)).get_json()
        started = time.perf_counter()
        response = await spake2_pair(base, armed["pin"], f"{index:064x}", f"bench {index}")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return {"runs": runs, "median_ms": round(1000 * statistics.median(times), 1),
            "max_ms": round(1000 * max(times), 1)}


async def _operator(client: Any, mark: dict[str, float]) -> None:
    """Types the PIN as soon as the handshake is parked."""
    for _ in range(3000):
        response = await client.get("/api/v1/pair", headers=AUTH)
        if (await response.get_json())["pin_pending"]:
            break
        await asyncio.sleep(0.01)
    mark["pin"] = time.perf_counter()
    await client.post("/api/v1/pair/pin", json={"pin": "1234"}, headers=AUTH)


async def gamestream_pairing(app: Any, runs: int, tmp: Path) -> dict[str, Any]:
    client = app.test_client()
    base = f"http://127.0.0.1:{app.extensions['mediagate'].settings.gamestream_http_port}"
    times = []
    for index in range(runs):
        moonlight = MoonlightClient(tmp / f"client{index}")
        moonlight.uniqueid = f"{index:016X}"
        mark: dict[str, float] = {}
        operator = asyncio.create_task(_operator(client, mark))
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            outcome = await moonlight.pair(http, "1234", operator)
        times.append(time.perf_counter() - mark["pin"])
        assert outcome.paired
    return {"runs": runs, "median_ms_after_pin": round(1000 * statistics.median(times), 1),
            "max_ms_after_pin": round(1000 * max(times), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({
            "MEDIAGATE_DATA_DIR": f"{tmp}/data", "MEDIAGATE_BIND": "127.0.0.1:18080",
            "PUNKTFUNK_MGMT_TOKEN": TOKEN, "MEDIAGATE_GAMESTREAM_HTTP_PORT": str(free_port()),
            "MEDIAGATE_GAMESTREAM_HTTPS_PORT": str(free_port())})
        await asyncio.to_thread(upgrade, settings.database_url)
        app = create_app(settings)
        async with app.test_app():
            result = {
                "stats_capture": await capture_accuracy(app, args.seconds),
                "native_spake2_pairing": await native_pairing(app, 8),
                "gamestream_pairing": await gamestream_pairing(app, 4, Path(tmp)),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
