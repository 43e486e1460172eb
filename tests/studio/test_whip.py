"""WHIP ingest for webrtc-input sources, and autoGoLive / autoGoOfflineOnDrop."""

from __future__ import annotations

import asyncio
import time

from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from quart import Quart

from gateway.state import EXTENSION
from tests.media.media_clients import NumberedVideoTrack, prefer
from tests.pg import free_port
from tests.rtc import local_peer_connection
from tests.studio.conftest import StudioClient, make_key


async def _wait(predicate, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Publisher:
    def __init__(self) -> None:
        self.pc = local_peer_connection()
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        prefer(self.pc.addTransceiver(NumberedVideoTrack(), direction="sendonly"), "video/H264")

    async def offer(self) -> bytes:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp.encode()

    async def answer(self, sdp: bytes) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp.decode(), "answer"))


SDP = {"Content-Type": "application/sdp"}


async def _setup(studio: StudioClient, key: str) -> tuple[str, dict[str, str]]:
    sid = (await studio.call("POST", "/v1/studios", key=key, json_body={"name": "w"})).json()["id"]
    source = (await studio.call("POST", f"/v1/studios/{sid}/sources", key=key,
                                json_body={"name": "cam", "type": "webrtc-input"})).json()
    return sid, source


async def test_whip_publish_auth_and_teardown(app: Quart, studio: StudioClient,
                                              admin_key: str) -> None:
    sid, source = await _setup(studio, admin_key)
    whip = source["whipUrl"]
    media = app.extensions[EXTENSION].media
    garbage = await studio.call("POST", whip, data=b"v=0\r\nnonsense", key=source["ingestToken"],
                                headers=SDP)
    assert garbage.status == 400 and garbage.json()["error"]["code"] == "invalid_request"
    wrong = await studio.call("POST", whip, data=b"v=0", headers=SDP, key="sit_" + "0" * 40)
    assert wrong.status == 401
    other = await make_key(app, "stranger", ["sources:write"])
    assert (await studio.call("POST", whip, data=b"v=0", headers=SDP, key=other)).status == 404
    as_json = await studio.call("POST", whip, json_body={"sdp": "v=0"}, key=admin_key)
    assert as_json.status == 415

    first = Publisher()
    reply = await studio.call("POST", whip, data=await first.offer(), headers=SDP,
                              key=source["ingestToken"])
    assert reply.status == 201 and reply.headers["Content-Type"] == "application/sdp"
    location = reply.headers["Location"]
    assert location.startswith(whip + "/")
    await first.answer(reply.body)
    prefix = f"studio/{sid}/{source['id']}/"

    async def source_live() -> bool:
        listed = await studio.call("GET", f"/v1/studios/{sid}/sources", key=admin_key)
        return listed.json()["data"][0]["status"] == "live"

    await _wait(source_live, 20, "the source to go live")
    assert {t.kind for t in media.list_tracks(prefix)} == {"audio", "video"}

    second = Publisher()  # with the API key this time; it replaces the first publisher
    replaced = await studio.call("POST", whip, data=await second.offer(), headers=SDP,
                                 key=admin_key)
    assert replaced.status == 201
    await second.answer(replaced.body)
    assert (await studio.call("DELETE", location, key=admin_key)).status == 404
    await _wait(source_live, 20, "the second publisher")
    done = await studio.call("DELETE", replaced.headers["Location"], key=source["ingestToken"])
    assert done.status == 200 and done.json() == {"ok": True}

    async def no_tracks() -> bool:
        return not media.list_tracks(prefix)

    await _wait(no_tracks, 10, "tracks to end")
    await first.pc.close()
    await second.pc.close()


async def test_auto_go_live_and_offline_on_drop(studio: StudioClient, admin_key: str) -> None:
    sid, source = await _setup(studio, admin_key)
    await studio.call("PATCH", f"/v1/studios/{sid}", key=admin_key,
                      json_body={"autoGoLive": True, "autoGoOfflineOnDrop": True})
    await studio.call("POST", f"/v1/studios/{sid}/destinations", key=admin_key, json_body={
        "name": "d", "platform": "custom", "rtmpUrl": f"rtmp://127.0.0.1:{free_port()}/live",
        "streamKey": "k"})
    assert (await studio.call("GET", f"/v1/studios/{sid}/stream-status",
                              key=admin_key)).json() == {"live": False}
    publisher = Publisher()
    reply = await studio.call("POST", source["whipUrl"], data=await publisher.offer(),
                              headers=SDP, key=source["ingestToken"])
    await publisher.answer(reply.body)

    async def live() -> bool:
        status = await studio.call("GET", f"/v1/studios/{sid}/stream-status", key=admin_key)
        return status.json()["live"]

    await _wait(live, 20, "autoGoLive")
    status = (await studio.call("GET", f"/v1/studios/{sid}/stream-status", key=admin_key)).json()
    assert status["encoderStreamId"].startswith("enc_") and status["mode"] == "cloud"

    async def destination_error() -> bool:
        listed = await studio.call("GET", f"/v1/studios/{sid}/destinations", key=admin_key)
        return listed.json()["data"][0]["status"] == "error"

    await _wait(destination_error, 20, "the unreachable destination to report error")
    await publisher.pc.close()  # the source drops

    async def offline() -> bool:
        return not await live()

    await _wait(offline, 40, "autoGoOfflineOnDrop")
    listed = await studio.call("GET", f"/v1/studios/{sid}/destinations", key=admin_key)
    assert listed.json()["data"][0]["status"] == "offline"


async def test_a_draining_replica_refuses_new_ingest(app: Quart, studio: StudioClient,
                                                     admin_key: str) -> None:
    _sid, source = await _setup(studio, admin_key)
    publisher = Publisher()
    try:
        app.extensions[EXTENSION].drain_started.set()
        refused = await studio.call("POST", source["whipUrl"], data=await publisher.offer(),
                                    key=source["ingestToken"], headers=SDP)
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["error"]["message"] == "server is shutting down"
        assert not app.extensions[EXTENSION].media.peers
    finally:
        await publisher.pc.close()
