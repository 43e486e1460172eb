"""Finding 6 of issue 13: offers whose ICE never completes must be cheap and bounded.

300 such offers used to hold a thread each (room recorders started before any media
arrived) plus two sockets, with no per-client cap, and RSS did not come back. Now pending
(not yet connected) media sessions are capped per client address and in all, and a timed-out
session releases its threads, sockets and memory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests import contract
from tests.rtc import local_peer_connection
from tests.server import RunningServer, start_server

SDP = {"Content-Type": "application/sdp"}
CONNECT_TIMEOUT = 20  # longer than posting 300 offers takes: all are pending at once
OFFERS = 300
ADDRESSES = 15  # 20 pending offers each: the default per-address cap
# Threads the server may start on demand and keep: asyncio's default executor.
EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)
FD_SLACK = 10
# After the offers time out, RSS is within 25% of the warmed-up baseline (what stays is
# Python's arena fragmentation), and a second round adds less than 5%.
RSS_SLACK = 0.25
ROUND_GROWTH = 0.05


@dataclass(frozen=True)
class Usage:
    threads: int
    fds: int
    rss_mb: float

    def __str__(self) -> str:
        return f"threads {self.threads}, fds {self.fds}, RSS {self.rss_mb:.1f} MB"


def usage(server: RunningServer) -> Usage:
    process = psutil.Process(server.process.pid)
    return Usage(process.num_threads(), process.num_fds(), process.memory_info().rss / 2**20)


async def abandoned_offer() -> str:
    """A real publisher offer from a client that goes away right after sending it."""
    pc = local_peer_connection()
    pc.addTransceiver("audio", direction="sendonly")
    pc.addTransceiver("video", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def forwarded(address: str) -> dict[str, str]:
    return {**SDP, "X-Forwarded-For": address}


async def post_offers(server: RunningServer, sdp: str, count: int, prefix: str) -> list[int]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        gate = asyncio.Semaphore(20)

        async def one(i: int) -> int:
            async with gate:
                response = await client.post(
                    f"/api/whip/publish/{prefix}{i}", content=sdp,
                    headers=forwarded(f"198.51.100.{i % ADDRESSES + 1}"),
                )
                return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def wait_for(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.5)
    return condition()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("abandoned")
    running = start_server(root / "data", ready_path="/healthz", env={
        "MEDIAGATE_TRUSTED_PROXIES": "127.0.0.1/32",
        "MEDIAGATE_PEER_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "MEDIAGATE_MAX_PENDING_PEERS": "1000",
        "RECORD_ENABLED": "1",
        "RECORD_DIR": str(root / "records"),
    })
    try:
        yield running
    finally:
        running.stop()


async def test_abandoned_offers_release_threads_sockets_and_memory(
        server: RunningServer) -> None:
    sdp = await abandoned_offer()
    # warm up: first-time imports, caches and the executor's threads are not per offer
    assert set(await post_offers(server, sdp, 40, "warm")) == {201}
    assert await wait_for(lambda: usage(server).fds < 40, CONNECT_TIMEOUT + 20)
    await asyncio.sleep(6)  # idle keep-alive connections close
    baseline = usage(server)
    print(f"baseline: {baseline}")
    afters: list[Usage] = []
    for round_ in range(2):
        started = time.monotonic()
        statuses = await post_offers(server, sdp, OFFERS, f"r{round_}-")
        during = usage(server)
        print(f"round {round_}: {OFFERS} offers in {time.monotonic() - started:.1f}s, "
              f"during: {during}")
        assert statuses == [201] * OFFERS
        assert during.threads <= baseline.threads + EXECUTOR_THREADS, "a thread per offer"
        settled = await wait_for(
            lambda: usage(server).fds <= baseline.fds + FD_SLACK,
            CONNECT_TIMEOUT + 20,
        )
        assert settled, f"sockets still open: {usage(server)}"
        # freed memory goes back to the OS within a trim interval of the last close
        await wait_for(lambda: usage(server).rss_mb <= baseline.rss_mb * (1 + RSS_SLACK), 20)
        after = usage(server)
        print(f"round {round_}: after the connect timeout: {after}")
        assert after.threads <= baseline.threads + EXECUTOR_THREADS
        assert after.rss_mb <= baseline.rss_mb * (1 + RSS_SLACK), f"{after} vs {baseline}"
        afters.append(after)
    assert afters[1].rss_mb <= afters[0].rss_mb * (1 + ROUND_GROWTH)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        rooms = (await client.get("/api/rooms")).json()
    assert rooms == []


async def test_the_pending_cap_is_per_client_address(server: RunningServer,
                                                     tmp_path: Path) -> None:
    sdp = await abandoned_offer()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        accepted = []
        for i in range(20):
            ok = await client.post(f"/api/whip/publish/cap-a{i}", content=sdp,
                                   headers=forwarded("203.0.113.7"))
            assert ok.status_code == 201, ok.text
            accepted.append(ok)
        first = accepted[0]
        refused = await client.post("/api/whip/publish/cap-a20", content=sdp,
                                    headers=forwarded("203.0.113.7"))
        contract.check("live", "POST", "/api/whip/publish/cap-a20", refused)
        assert refused.status_code == 429  # live's own 429: plain text, as upstream
        assert refused.text.strip() == "too many requests"
        assert 1 <= int(refused.headers["Retry-After"]) <= CONNECT_TIMEOUT
        other = await client.post("/api/whip/publish/cap-b0", content=sdp,
                                  headers=forwarded("203.0.113.8"))
        assert other.status_code == 201, other.text
        # the same address's pending sessions count across APIs: a WHEP viewer is refused too
        viewer = await client.post("/api/whep/play/cap-b0", content=sdp.replace(
            "sendonly", "recvonly"), headers=forwarded("203.0.113.7"))
        assert viewer.status_code == 429
        # ending a pending session frees its place at once
        await client.delete(first.headers["Location"])
        again = await client.post("/api/whip/publish/cap-a21", content=sdp,
                                  headers=forwarded("203.0.113.7"))
        assert again.status_code == 201, again.text


def test_the_global_pending_cap_answers_503(tmp_path: Path) -> None:
    sdp = asyncio.run(abandoned_offer())
    running = start_server(tmp_path / "data", ready_path="/healthz", env={
        "MEDIAGATE_TRUSTED_PROXIES": "127.0.0.1/32", "MEDIAGATE_MAX_PENDING_PEERS": "3",
        "CALLS_APP_ID": "app1", "CALLS_APP_SECRET": "secret-123456",
    })
    try:
        with httpx.Client(base_url=running.base_url, timeout=60) as client:
            for i in range(3):
                ok = client.post(f"/api/whip/publish/g{i}", content=sdp,
                                 headers=forwarded(f"192.0.2.{i + 10}"))
                assert ok.status_code == 201, ok.text
            refused = client.post("/api/whip/publish/g3", content=sdp,
                                  headers=forwarded("192.0.2.99"))
            assert refused.status_code == 503
            assert "on this server" in refused.json()["error"]
            assert int(refused.headers["Retry-After"]) >= 1
            calls = client.post(
                "/v1/apps/app1/sessions/new", headers={
                    "Authorization": "Bearer secret-123456", "X-Forwarded-For": "192.0.2.98"},
                json={"sessionDescription": {"type": "offer", "sdp": sdp}},
            )
            contract.check("calls", "POST", "/v1/apps/app1/sessions/new", calls)
            assert calls.status_code == 503
            assert calls.json()["errorCode"] == "service_unavailable"
            assert "Retry-After" in calls.headers
    finally:
        running.stop()
