"""Lifecycle webhooks for real: an uploaded library clip (a `media` source naming the asset id)
goes live to nginx-rtmp through a destination bound to a manual connection, and a subscriber
receives stream.live, source/destination status changes and stream.offline, signed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.studio import signing
from tests.studio.live_helpers import Api, make_clip, start_gateway
from tests.studio.receiver import receiver
from tests.studio.rtmp import NginxRtmp

SECRET = "lifecycle-secret-" + "a1" * 8


def test_lifecycle_events_reach_a_subscriber(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    # The subscriber and nginx listen on 127.0.0.1: open loopback to the egress guard.
    server = start_gateway(tmp_path / "data", MEDIAGATE_EGRESS_ALLOW="127.0.0.0/8")
    api = Api(server)
    try:
        with receiver() as hook:
            api("POST", "/v1/webhooks", {"url": hook.url, "secret": SECRET, "events": [
                "stream.live", "stream.offline", "source.status_changed",
                "destination.status_changed"]}, expect=201)
            asset_id = api.upload_clip(make_clip(tmp_path / "clip.mp4", seconds=2,
                                                 size="320x240"))
            connection = api("POST", "/v1/connections", {
                "connectionType": "manual", "platform": "custom", "displayName": "nginx",
                "rtmpUrl": nginx.url, "streamKey": "events"}, expect=201).json()
            sid = api("POST", "/v1/studios", {"name": "live"}, expect=201).json()["id"]
            src = api("POST", f"/v1/studios/{sid}/sources", {
                "name": "library clip", "type": "media", "url": asset_id},
                expect=201).json()["id"]
            dst = api("POST", f"/v1/studios/{sid}/destinations", {
                "name": "bound", "platform": "custom", "connectionId": connection["id"]},
                expect=201).json()["id"]
            live = api("POST", f"/v1/studios/{sid}/go-live", expect=200).json()
            assert live["destinationIds"] == [dst]

            def events() -> list[dict[str, Any]]:
                found = []
                for request in list(hook.requests):
                    assert signing.verify(SECRET, request.body,
                                          request.headers["x-mediagate-signature"])
                    found.append(json.loads(request.body))
                return found

            def seen(kind: str, **data: str) -> bool:
                return any(e["type"] == kind and all(e["data"].get(k) == v
                                                     for k, v in data.items())
                           for e in events())

            api.wait_for(lambda: seen("destination.status_changed", destinationId=dst,
                                      status="live"), 20, "destination live event")
            assert seen("stream.live", studioId=sid)
            assert seen("source.status_changed", sourceId=src, status="live",
                        previousStatus="idle")
            api("POST", f"/v1/studios/{sid}/go-offline", expect=200)
            api.wait_for(lambda: seen("stream.offline", studioId=sid), 10, "offline event")
            api.wait_for(lambda: seen("destination.status_changed", destinationId=dst,
                                      status="offline", previousStatus="live"), 10,
                         "destination offline event")
            kinds = [e["type"] for e in events()]
            assert kinds.count("stream.live") == 1 and kinds.count("stream.offline") == 1
            assert kinds.index("stream.live") < kinds.index("stream.offline")
            assert "chat.message" not in kinds
            for request in hook.requests:
                assert request.headers["x-mediagate-event"] == json.loads(request.body)["type"]
        assert SECRET not in server.log()
    finally:
        api.close()
        assert server.stop() == 0, server.log()[-5000:]
        nginx.stop()
