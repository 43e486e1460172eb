"""Finding 5 of issue 13: one request must not stall the event loop.

A 1 MB offer with 580 m-sections used to be accepted after about 3 s, with `/healthz`
taking 2.7 s meanwhile. Offers are now checked against the shared SDP limits before aiortc
parses them; these tests measure `/healthz` on the real server while offers are processed.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.media_setup import WHIP_SDP_LIMITS
from tests.security.sdp_shapes import offer, padded_offer
from tests.server import RunningServer, start_server

SDP = {"Content-Type": "application/sdp"}
HEALTHZ_P99 = 0.100
# The machine is shared with other test runs: one pass can be slowed by CPU contention
# alone, so a limit holds if one of ATTEMPTS passes meets it (a stall from our own code,
# like the 2.7 s of finding 5, fails them all).
ATTEMPTS = 3
OFFERS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("stalls") / "data", ready_path="/healthz")
    try:
        yield running
    finally:
        running.stop()


async def healthz_while(server: RunningServer,
                        work: Callable[[httpx.AsyncClient], Awaitable[None]]) -> list[float]:
    """`/healthz` latencies, one request after another, for as long as `work` runs."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def poll(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            started = time.perf_counter()
            response = await client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
            await asyncio.sleep(0.005)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as health, \
            httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        for _ in range(20):  # warm the connection and the route
            await health.get("/healthz")
        poller = asyncio.create_task(poll(health))
        try:
            await work(client)
        finally:
            done.set()
            await poller
    return latencies


async def best_p99(server: RunningServer,
                   work: Callable[[httpx.AsyncClient], Awaitable[None]], what: str) -> float:
    """The lowest `/healthz` p99 of up to ATTEMPTS runs of `work` (stops at the first pass
    under HEALTHZ_P99); prints each run's figures."""
    results: list[float] = []
    for _ in range(ATTEMPTS):
        latencies = await healthz_while(server, work)
        results.append(p99(latencies))
        print(f"{what}: healthz p50 {statistics.median(latencies) * 1000:.1f} ms, p99 "
              f"{results[-1] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms over "
              f"{len(latencies)} requests")
        if results[-1] < HEALTHZ_P99:
            break
    return min(results)


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


async def test_the_580_section_offer_is_refused_quickly(server: RunningServer) -> None:
    big = padded_offer(580, 1_000_000)
    replies: list[tuple[httpx.Response, float]] = []

    async def post(client: httpx.AsyncClient) -> None:
        for i in range(5):
            started = time.perf_counter()
            response = await client.post(f"/api/whip/publish/huge{i}", content=big, headers=SDP)
            assert response.status_code != 201, "the 580-section offer was accepted"
            replies.append((response, time.perf_counter() - started))
            await asyncio.sleep(0.05)

    worst = await best_p99(server, post, "580-section offer")
    for response, elapsed in replies:
        assert response.status_code == 400, response.text[:200]
        assert "580 m-sections" in response.json()["error"]
        assert "at most 16" in response.json()["error"]
        assert elapsed < 1.0
    assert worst < HEALTHZ_P99


async def test_healthz_stays_fast_while_the_largest_accepted_offers_are_processed(
        server: RunningServer) -> None:
    largest = offer(WHIP_SDP_LIMITS, candidates=WHIP_SDP_LIMITS.max_candidates)
    assert largest.count("\n") > WHIP_SDP_LIMITS.max_lines - 16
    statuses: list[int] = []
    timings: list[float] = []

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        # the first peer pays one-time costs (aiortc internals checks, lazy imports)
        warm = await client.post("/api/whip/publish/warm", content=largest, headers=SDP)
        assert warm.status_code == 201, warm.text
        await client.delete(warm.headers["Location"])

    async def publish(client: httpx.AsyncClient) -> None:
        for i in range(OFFERS):
            started = time.perf_counter()
            response = await client.post(f"/api/whip/publish/largest{i}", content=largest,
                                         headers=SDP)
            timings.append(time.perf_counter() - started)
            statuses.append(response.status_code)
            assert response.status_code == 201, response.text[:200]
            await client.delete(response.headers["Location"])
            await asyncio.sleep(0.05)

    best = await best_p99(server, publish, f"largest accepted offer ({len(largest)} bytes, "
                          f"{largest.count(chr(10))} lines)")
    assert statuses and set(statuses) == {201}
    print(f"largest accepted offer answered in {max(timings):.3f}s at most")
    assert best < HEALTHZ_P99


@pytest.mark.parametrize("limit", ["lines", "candidates", "line"])
async def test_each_limit_is_named_in_the_refusal(server: RunningServer, limit: str,
                                                  tmp_path: Path) -> None:
    limits = WHIP_SDP_LIMITS
    if limit == "lines":
        body = offer(limits).replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\n" + "a=x:y\r\n" * 1100, 1)
        expected = f"at most {limits.max_lines}"
    elif limit == "candidates":
        body = offer(limits, candidates=limits.max_candidates + 1)
        expected = f"{limits.max_candidates + 1} ICE candidates"
    else:
        body = offer(limits).replace("a=rtcp-mux", "a=x-long:" + "x" * 5000, 1)
        expected = f"at most {limits.max_line_length} are accepted"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        response = await client.post(f"/api/whip/publish/limit-{limit}", content=body,
                                     headers=SDP)
    assert response.status_code == 400
    assert expected in response.json()["error"]
