"""An RTMP server that accepts and never answers: that destination shows `error` after the
connect timeout, the others are unaffected, and go-offline still returns."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from quart import Quart

from gateway.settings import Settings
from media.restream import DELIVERY_FAILED
from tests.studio.conftest import StudioClient, upload_media
from tests.studio.live_helpers import make_clip


@pytest.fixture
def studio_env() -> dict[str, str]:
    return {"STUDIO_RATE_LIMIT_RPS": "0", "STUDIO_RESTREAM_CONNECT_TIMEOUT": "2",
            "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}


async def test_silent_server_times_out(app: Quart, settings: Settings, studio: StudioClient,
                                       admin_key: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clip = await asyncio.to_thread(make_clip, settings.data_dir / "clip.mp4", 2, "160x120")
    asset_id = (await upload_media(app, studio, admin_key, clip.read_bytes()))["assetId"]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                                 json_body={"name": "s"})).json()["id"]
        await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                          json_body={"name": "clip", "type": "media", "url": asset_id})
        await studio.call("POST", f"/v1/studios/{sid}/destinations", key=admin_key, json_body={
            "name": "silent", "platform": "custom",
            "rtmpUrl": f"rtmp://127.0.0.1:{silent.getsockname()[1]}/live", "streamKey": "k"})
        await studio.call("POST", f"/v1/studios/{sid}/go-live", key=admin_key)
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            data = (await studio.call("GET", f"/v1/studios/{sid}/destinations",
                                      key=admin_key)).json()["data"]
            status = (data[0]["status"], data[0].get("statusReason"))
            if status[0] == "error":
                break
            await asyncio.sleep(0.2)
        assert status is not None and status[0] == "error"
        assert status[1] == DELIVERY_FAILED, status  # generic: no port scanner (issue 13)
        # the gateway stayed responsive throughout, and go-offline is prompt
        started = time.monotonic()
        reply = await studio.call("POST", f"/v1/studios/{sid}/go-offline", key=admin_key)
        assert reply.status == 200 and time.monotonic() - started < 5

        # switching the active source while live puts the new one on air
        first = (await studio.call("POST", f"/v1/studios/{sid}/go-live", key=admin_key)).json()
        other = (await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                                   json_body={"name": "again", "type": "media",
                                              "url": asset_id})).json()["id"]
        await studio.call("PATCH", f"/v1/studios/{sid}/sources/{other}", key=admin_key,
                          json_body={"active": True})
        status = (await studio.call("GET", f"/v1/studios/{sid}/stream-status",
                                    key=admin_key)).json()
        assert status["live"] is True
        assert status["encoderStreamId"] != first["encoderStreamId"]
        sources = (await studio.call("GET", f"/v1/studios/{sid}/sources",
                                     key=admin_key)).json()["data"]
        assert {s["id"]: s["status"] for s in sources}[other] == "live"

        # deleting the source of a live studio ends the broadcast
        source_id = other
        await studio.call("DELETE", f"/v1/studios/{sid}/sources/{source_id}", key=admin_key)
        assert (await studio.call("GET", f"/v1/studios/{sid}/stream-status",
                                  key=admin_key)).json() == {"live": False}
    finally:
        silent.close()
