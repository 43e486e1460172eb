"""A contract-checking Calls API client (Quart test client or httpx) and aiortc peers that
push numbered video + Opus and pull tracks, capturing encoded frames (no decoding)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from quart.testing import QuartClient

from media import hook
from tests import contract
from tests.media.media_clients import Capture, NumberedVideoTrack, Publisher, prefer

APP_ID = "calls-test-app"
APP_SECRET = "calls-test-secret-0123456789"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class CallsApi:
    """Every response is validated against specs/calls.openapi.yaml."""

    def __init__(self, client: QuartClient | httpx.AsyncClient, *, prefix: str = "/v1",
                 app_id: str = APP_ID, secret: str = APP_SECRET) -> None:
        self.client = client
        self.prefix = prefix
        self.app_id = app_id
        self.secret = secret

    async def call(self, method: str, path: str, body: Any = None, *,
                   secret: str | None = None, headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> Reply:
        url = f"{self.prefix}/apps/{self.app_id}{path}"
        sent = {"Authorization": f"Bearer {secret or self.secret}", **(headers or {})}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        if isinstance(self.client, httpx.AsyncClient):
            response = await self.client.request(method, url, content=data, headers=sent)
            payload = response.content
        else:
            response = await self.client.open(url, method=method, data=data, headers=sent)
            payload = await response.get_data()
        contract.check("calls", method, url, response, payload)
        return Reply(response.status_code, json.loads(payload) if payload else None,
                     {k.lower(): v for k, v in response.headers.items()})

    async def new_session(self, offer: str | None = None) -> str:
        body = {"sessionDescription": {"type": "offer", "sdp": offer}} if offer else None
        reply = await self.call("POST", "/sessions/new", body)
        assert reply.status == 201, reply.body
        return reply.body["sessionId"]

    async def state(self, session_id: str) -> dict[str, dict[str, Any]]:
        reply = await self.call("GET", f"/sessions/{session_id}")
        assert reply.status == 200, reply.body
        return {f"{t['location']}:{t.get('trackName')}": t for t in reply.body["tracks"]}


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class CallsPeer:
    """One browser-like client PeerConnection used with one Calls session."""

    pc: RTCPeerConnection = field(default_factory=RTCPeerConnection)
    captures: dict[str, Capture] = field(default_factory=dict)
    session_id: str = ""

    def add_camera(self) -> dict[str, str]:
        """Send Opus silence and numbered VP8 video; returns {kind: trackName}."""
        audio, video = AudioStreamTrack(), NumberedVideoTrack()
        self.pc.addTransceiver(audio, direction="sendonly")
        prefer(self.pc.addTransceiver(video, direction="sendonly"), "video/VP8")
        return {"audio": audio.id, "video": video.id}

    def mid_of(self, track_name: str) -> str:
        return next(t.mid for t in self.pc.getTransceivers()
                    if t.sender.track is not None and t.sender.track.id == track_name)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, description: dict[str, str]) -> None:
        await self.pc.setRemoteDescription(
            RTCSessionDescription(description["sdp"], description["type"])
        )
        self.hook_receivers()

    async def answer(self, offer: dict[str, str]) -> str:
        await self.accept(offer)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def hook_receivers(self) -> None:
        for transceiver in self.pc.getTransceivers():
            if (transceiver.mid is None or transceiver.mid in self.captures
                    or transceiver.direction == "sendonly"):
                continue
            sink = hook.install_receive_hook(transceiver.receiver)
            capture = Capture(transceiver.kind)
            sink.bind(capture.on_frame, capture.on_end)
            self.captures[transceiver.mid] = capture

    async def connected(self, within: float = 5.0) -> None:
        await wait_for(lambda: self.pc.iceConnectionState in ("connected", "completed"), within)

    async def close(self) -> None:
        await self.pc.close()


async def push_camera(api: CallsApi, session_id: str | None = None,
                      ) -> tuple[CallsPeer, dict[str, str]]:
    """The official example's push: sessions/new (unless given the session), tracks/new with
    the offer, wait connected."""
    peer = CallsPeer()
    names = peer.add_camera()
    peer.session_id = session_id or await api.new_session()
    offer = await peer.offer()
    tracks = [{"location": "local", "mid": peer.mid_of(name), "trackName": name}
              for name in names.values()]
    reply = await api.call("POST", f"/sessions/{peer.session_id}/tracks/new",
                           {"sessionDescription": {"type": "offer", "sdp": offer},
                            "tracks": tracks})
    assert reply.status == 200, reply.body
    assert reply.body["requiresImmediateRenegotiation"] is False
    assert not any("errorCode" in t for t in reply.body["tracks"]), reply.body
    await peer.accept(reply.body["sessionDescription"])
    await peer.connected()
    return peer, names


async def pull(api: CallsApi, peer: CallsPeer, remote_session: str,
               names: list[str]) -> dict[str, str]:
    """tracks/new with remote tracks, then renegotiate with the answer; {trackName: mid}."""
    reply = await api.call("POST", f"/sessions/{peer.session_id}/tracks/new", {
        "tracks": [{"location": "remote", "sessionId": remote_session, "trackName": name}
                   for name in names],
    })
    assert reply.status == 200, reply.body
    assert not any("errorCode" in t for t in reply.body["tracks"]), reply.body
    assert reply.body["requiresImmediateRenegotiation"] is True
    assert reply.body["sessionDescription"]["type"] == "offer"
    answer = await peer.answer(reply.body["sessionDescription"])
    renegotiated = await api.call("PUT", f"/sessions/{peer.session_id}/renegotiate",
                                  {"sessionDescription": {"type": "answer", "sdp": answer}})
    assert renegotiated.status == 200, renegotiated.body
    assert "errorCode" not in renegotiated.body
    return {t["trackName"]: t["mid"] for t in reply.body["tracks"]}


async def publish_whip(client: QuartClient, room: str, publisher: Publisher,
                       headers: dict[str, str] | None = None) -> int:
    """WHIP-publish `publisher` into a live room through the in-process app; the status."""
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    path = f"/api/whip/publish/{room}"
    response = await client.post(path, data=publisher.pc.localDescription.sdp.encode(),
                                 headers={"Content-Type": "application/sdp", **(headers or {})})
    body = await response.get_data()
    contract.check("live", "POST", path, response, body)
    if response.status_code == 201:
        await publisher.pc.setRemoteDescription(RTCSessionDescription(body.decode(), "answer"))
    return response.status_code
