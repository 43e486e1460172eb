"""Issue 13 follow-up: background work started by a request must not keep the request alive.

A task, timer or socket reader copies the contextvars context it is created in, and under a
Quart handler that context holds the request. The media core's connect watchdog and aiortc's
own ICE/DTLS tasks, retries and socket readers, all created while answering an offer, kept
every abandoned offer's request (headers, body) alive until its peer connected or timed out.
Now they run in an empty context (media/detach.py): once the requests are answered, no
`quart.wrappers.Request` is left while the peers are still pending.
"""

from __future__ import annotations

import asyncio
import gc
import types
from pathlib import Path

import pytest
from quart import Quart
from quart.wrappers import Request

from gateway.settings import Settings
from gateway.state import EXTENSION
from tests.calls.helpers import APP_ID, APP_SECRET, CallsApi
from tests.rtc import local_peer_connection

OFFERS = 6  # 18 pending peers: within the per-client cap of 20
SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path / "data"),
        "MEDIAGATE_PEER_CONNECT_TIMEOUT": "120",  # every peer stays pending throughout
        "CALLS_APP_ID": APP_ID, "CALLS_APP_SECRET": APP_SECRET,
    })


async def offer(direction: str) -> str:
    """A real offer from a client that goes away right after sending it."""
    pc = local_peer_connection()
    pc.addTransceiver("audio", direction=direction)  # type: ignore[arg-type]
    pc.addTransceiver("video", direction=direction)  # type: ignore[arg-type]
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def requests_alive() -> list[Request]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, Request)]


def holders(alive: list[Request]) -> list[str]:
    """The tasks and loop handles a request is reachable from (for the failure message)."""
    found: list[str] = []
    frontier: list[object] = list(alive)
    seen = {id(o) for o in frontier} | {id(alive), id(frontier)}
    for _ in range(6):
        parents: list[object] = []
        for obj in frontier:
            for ref in gc.get_referrers(obj):
                if id(ref) in seen or isinstance(ref, types.FrameType):
                    continue
                seen.add(id(ref))
                if isinstance(ref, asyncio.Task):
                    found.append(f"task {ref.get_coro().__qualname__}")  # type: ignore[union-attr]
                elif isinstance(ref, asyncio.Handle):
                    found.append(repr(ref)[:120])
                else:
                    parents.append(ref)
        frontier = parents
    return sorted(set(found))


async def test_pending_peers_keep_no_request_alive(app: Quart) -> None:
    # Quart's own body/response timers (cancelled, but kept by the loop until due) hold a
    # request for these few seconds; ours must not hold one for the peer's 120 s.
    app.config["BODY_TIMEOUT"] = 1
    app.config["RESPONSE_TIMEOUT"] = 1
    client = app.test_client()
    media = app.extensions[EXTENSION].media
    publish, play = await offer("sendonly"), await offer("recvonly")
    calls = CallsApi(client)
    for i in range(OFFERS):
        reply = await client.post(f"/api/whip/publish/room{i}", data=publish, headers=SDP)
        assert reply.status_code == 201, await reply.get_data()
        reply = await client.post(f"/api/whep/play/room{i}", data=play, headers=SDP)
        assert reply.status_code == 201, await reply.get_data()
        await calls.new_session(publish)
    await asyncio.sleep(2.5)  # Quart's timers above are due
    assert media.pending_peers() == 3 * OFFERS  # nobody connected: all still pending
    alive = requests_alive()
    assert not alive, f"{len(alive)} requests alive, held by {holders(alive)}"
