"""Soak: memory comes back (issue 13). A publisher, six churning WHEP viewers and control
load (room listings, metrics, Calls sessions with offers) against the real server.

After a warm-up, the server's RSS stays within 10% of its level at the end of the warm-up;
once the load stops, threads, sockets, rooms and RSS are back near the idle baseline.
The normal suite runs it for 2 minutes; the long run is

    MEDIAGATE_SOAK_SECONDS=600 python -m pytest -q -s tests/security/test_soak.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live.helpers import play, publish, request
from tests.media.media_clients import Publisher, Subscriber
from tests.rtc import local_peer_connection
from tests.server import RunningServer, start_server

SECONDS = float(os.environ.get("MEDIAGATE_SOAK_SECONDS", "120"))
WARM_UP = min(60.0, SECONDS / 3)
VIEWERS = 6
FLAT = 0.10  # RSS after warm-up stays within 10% of the level at its end
BASELINE_SLACK = 0.25  # after the load: within 25% of the idle baseline
APP, SECRET = "soakapp", "soak-secret-123"
pytestmark = pytest.mark.timeout(SECONDS + 300)


def rss_mb(server: RunningServer) -> float:
    return psutil.Process(server.process.pid).memory_info().rss / 2**20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data", ready_path="/healthz", env={
        "CALLS_APP_ID": APP, "CALLS_APP_SECRET": SECRET,
        "MEDIAGATE_PEER_CONNECT_TIMEOUT": "5",
    })
    try:
        yield running
    finally:
        running.stop()


async def viewer_churn(client: httpx.AsyncClient, stop: asyncio.Event,
                       results: list[bool]) -> None:
    """Play the room, take some frames, leave; again until stopped."""
    chooser = random.Random()
    while not stop.is_set():
        viewer = Subscriber()
        try:
            response = await play(client, "soak", viewer)
            assert response.status_code == 201, response.text
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), chooser.uniform(2.0, 6.0))
            video = [c for c in viewer.captures.values() if c.kind == "video"]
            results.append(bool(video and video[0].frames))
            await request(client, "DELETE", response.headers["Location"])
        finally:
            await viewer.pc.close()


async def control_load(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    """Room listings, metrics, and Calls sessions with offers (left to time out)."""
    auth = {"Authorization": f"Bearer {SECRET}"}
    while not stop.is_set():
        assert (await request(client, "GET", "/api/rooms")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        pc = local_peer_connection()
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        created = await client.post(f"/v1/apps/{APP}/sessions/new", headers=auth, json={
            "sessionDescription": {"type": "offer", "sdp": pc.localDescription.sdp}})
        assert created.status_code == 201, created.text
        await pc.close()
        await asyncio.sleep(1.0)


async def test_memory_is_flat_under_churn_and_comes_back(server: RunningServer) -> None:
    process = psutil.Process(server.process.pid)
    await asyncio.sleep(2)
    idle = (process.num_threads(), process.num_fds(), rss_mb(server))
    print(f"idle: threads {idle[0]}, fds {idle[1]}, RSS {idle[2]:.1f} MB")
    stop = asyncio.Event()
    results: list[bool] = []
    samples: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        publisher = Publisher()
        published = await publish(client, "soak", publisher)
        assert published.status_code == 201, published.text
        tasks = [asyncio.create_task(viewer_churn(client, stop, results))
                 for _ in range(VIEWERS)]
        tasks.append(asyncio.create_task(control_load(client, stop)))
        started = time.monotonic()
        while time.monotonic() - started < SECONDS:
            await asyncio.sleep(5)
            for task in tasks:
                if task.done():
                    task.result()  # a failed load task fails the test now
            samples.append((time.monotonic() - started, rss_mb(server)))
        stop.set()
        await asyncio.gather(*tasks)
        await request(client, "DELETE", published.headers["Location"])
        await publisher.close()
        warm = [rss for at, rss in samples if at <= WARM_UP][-1]
        steady = [rss for at, rss in samples if at > WARM_UP]
        print(f"{len(results)} viewer sessions ({sum(results)} got video); RSS at the end of "
              f"the warm-up {warm:.1f} MB, after it {min(steady):.1f}-{max(steady):.1f} MB")
        print("RSS samples (s, MB): " + ", ".join(f"{at:.0f}:{rss:.0f}" for at, rss in samples))
        # the load is over: connect timeouts of the Calls sessions, then the memory trim
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            rooms = (await request(client, "GET", "/api/rooms")).json()
            if (not rooms and process.num_fds() <= idle[1] + 5
                    and rss_mb(server) <= idle[2] * (1 + BASELINE_SLACK)):
                break
            await asyncio.sleep(1)
    after = (process.num_threads(), process.num_fds(), rss_mb(server))
    print(f"after the load: threads {after[0]}, fds {after[1]}, RSS {after[2]:.1f} MB")
    assert results and sum(results) >= 0.8 * len(results)
    assert max(steady) <= warm * (1 + FLAT), "RSS grew after the warm-up"
    assert rooms == []
    assert after[1] <= idle[1] + 5
    assert after[0] <= idle[0] + min(32, (os.cpu_count() or 1) + 4)
    assert after[2] <= idle[2] * (1 + BASELINE_SLACK)
