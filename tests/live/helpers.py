"""HTTP WHIP/WHEP drivers for the aiortc clients of tests/media/media_clients.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from aiortc import RTCSessionDescription

from tests import contract
from tests.media.media_clients import Publisher, Subscriber
from tests.server import RunningServer, start_server

SDP = {"Content-Type": "application/sdp"}


def start_live_server(data_dir: Path, **env: str) -> RunningServer:
    return start_server(data_dir, env=env, ready_path="/healthz")


def strip_candidates(sdp: str) -> str:
    """The offer a trickling client sends before it has gathered anything."""
    return "".join(
        line for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


def candidates_of(sdp: str) -> list[str]:
    return re.findall(r"^a=(candidate:.*?)\r?$", sdp, flags=re.M)


async def request(client: httpx.AsyncClient, method: str, path: str,
                  **kwargs: object) -> httpx.Response:
    """Every response goes through the contract check."""
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    contract.check("live", method, path, response)
    return response


async def publish(client: httpx.AsyncClient, room: str, publisher: Publisher,
                  headers: dict[str, str] | None = None, *, trickle: bool = False,
                  ) -> httpx.Response:
    pc = publisher.pc
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    response = await request(client, "POST", f"/api/whip/publish/{room}",
                             content=strip_candidates(offer) if trickle else offer,
                             headers={**SDP, **(headers or {})})
    if response.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        publisher.count_plis()
    return response


async def play(client: httpx.AsyncClient, room: str, subscriber: Subscriber,
               headers: dict[str, str] | None = None) -> httpx.Response:
    pc = subscriber.pc
    await pc.setLocalDescription(await pc.createOffer())
    subscriber.hook_receivers()
    response = await request(client, "POST", f"/api/whep/play/{room}",
                             content=pc.localDescription.sdp,
                             headers={**SDP, **(headers or {})})
    if response.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        subscriber.hook_receivers()
    return response


async def rooms(client: httpx.AsyncClient) -> dict[str, dict[str, object]]:
    response = await request(client, "GET", "/api/rooms")
    assert response.status_code == 200
    return {room["name"]: room for room in response.json()}
