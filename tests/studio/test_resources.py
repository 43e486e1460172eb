"""Studios, sources and destinations: every field, pagination, validation, ownership."""

from __future__ import annotations

import base64

import pytest
from quart import Quart

from gateway.settings import Settings
from gateway.state import EXTENSION
from tests.studio.conftest import StudioClient, make_key, upload_media
from tests.studio.media_files import mp4_bytes


@pytest.mark.parametrize("studio_env", [{"STUDIO_RATE_LIMIT_RPS": "0",
                                         "STUDIO_MAX_STUDIOS": "200"}])
async def test_pagination_walks_120_studios_exactly_once(app: Quart, studio: StudioClient,
                                                        admin_key: str) -> None:
    svc = app.extensions[EXTENSION].services["studio"]
    created = {(await svc.create_studio("alice", f"s{i}", None)).id for i in range(119)}
    created.add((await studio.call("POST", "/v1/studios", key=admin_key,
                                   json_body={"name": "last"})).json()["id"])
    await svc.create_studio("someone-else", "not mine", None)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/v1/studios?limit=50" + (f"&cursor={cursor}" if cursor else "")
        reply = await studio.call("GET", path, key=admin_key)
        assert reply.status == 200
        body = reply.json()
        seen += [s["id"] for s in body["data"]]
        pages += 1
        if "nextCursor" not in body:
            break
        assert len(body["data"]) == 50
        cursor = body["nextCursor"]
    assert pages == 3 and len(seen) == 120 and set(seen) == created
    assert seen == sorted(seen)

    default = (await studio.call("GET", "/v1/studios", key=admin_key)).json()
    assert len(default["data"]) == 50 and "nextCursor" in default
    clamped = (await studio.call("GET", "/v1/studios?limit=5000", key=admin_key)).json()
    assert len(clamped["data"]) == 120 and "nextCursor" not in clamped

    payload, signature = default["nextCursor"].split(".")
    forged = base64.urlsafe_b64encode(b'{"k":"std_0"}').rstrip(b"=").decode()
    for bad in ("limit=0", "limit=-3", "limit=abc", "cursor=garbage",
                f"cursor={forged}.{signature}", f"cursor={payload}.AAAA{signature[4:]}",
                f"cursor={payload}x.{signature}"):
        reply = await studio.call("GET", f"/v1/studios?{bad}", key=admin_key)
        assert reply.status == 400, bad
        assert reply.json()["error"]["code"] == "invalid_request"


async def test_studio_fields_and_patch(studio: StudioClient, admin_key: str) -> None:
    created = await studio.call("POST", "/v1/studios", key=admin_key,
                                json_body={"name": " Morning show ", "description": "daily"})
    assert created.status == 201
    body = created.json()
    assert body["name"] == "Morning show" and body["description"] == "daily"
    assert body["ownerSub"] == "alice" and body["role"] == "owner"
    assert body["autoGoLive"] is False and body["autoGoOfflineOnDrop"] is False
    assert body["createdAt"].endswith("Z")
    sid = body["id"]
    patched = await studio.call("PATCH", f"/v1/studios/{sid}", key=admin_key,
                                json_body={"name": "Evening", "autoGoLive": True,
                                           "autoGoOfflineOnDrop": True})
    assert patched.status == 200
    assert patched.json()["name"] == "Evening" and patched.json()["autoGoLive"] is True
    got = (await studio.call("GET", f"/v1/studios/{sid}", key=admin_key)).json()
    assert got["autoGoOfflineOnDrop"] is True and got["description"] == "daily"
    for bad in ({}, {"name": ""}, {"name": 5}, {"autoGoLive": "yes"}):
        if bad == {}:
            reply = await studio.call("POST", "/v1/studios", key=admin_key, json_body=bad)
        else:
            reply = await studio.call("PATCH", f"/v1/studios/{sid}", key=admin_key,
                                      json_body=bad)
        assert reply.status == 400, bad
    for raw in (b"not json", b"[1,2]", b""):
        reply = await studio.call("POST", "/v1/studios", key=admin_key, data=raw,
                                  headers={"Content-Type": "application/json"})
        assert reply.status == 400, raw
    assert (await studio.call("DELETE", f"/v1/studios/{sid}", key=admin_key,
                              check=False)).status == 405


async def test_sources_crud_and_one_active(app: Quart, settings: Settings,
                                           studio: StudioClient, admin_key: str) -> None:
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    base = f"/v1/studios/{sid}/sources"
    cam = await studio.call("POST", base, key=admin_key,
                            json_body={"name": "cam", "type": "webrtc-input"})
    assert cam.status == 201
    cam_body = cam.json()
    assert cam_body["active"] is True and cam_body["status"] == "offline"
    assert cam_body["whipUrl"] == f"{base}/{cam_body['id']}/whip"
    assert cam_body["ingestToken"].startswith("sit_")
    pull = await studio.call("POST", base, key=admin_key, json_body={
        "name": "cam2", "type": "rtmp", "url": "rtmp://127.0.0.1/live/x", "active": True})
    assert pull.status == 201 and pull.json()["active"] is True
    listed = (await studio.call("GET", base, key=admin_key)).json()["data"]
    assert {s["id"]: s["active"] for s in listed} == {cam_body["id"]: False,
                                                      pull.json()["id"]: True}
    upload = await upload_media(app, studio, admin_key, mp4_bytes())
    media = await studio.call("POST", base, key=admin_key, json_body={
        "name": "loop", "type": "media", "url": upload["assetId"]})
    assert media.status == 201 and media.json()["active"] is False
    settings.data_dir.joinpath("clip.mp4").write_bytes(b"\x00" * 16)
    for bad in ({"name": "x", "type": "media", "url": "/etc/passwd"},
                {"name": "x", "type": "media", "url": "../secret_key"},
                {"name": "x", "type": "media", "url": "missing.mp4"},
                {"name": "x", "type": "media", "url": "clip.mp4"},  # a file, not an asset
                {"name": "x", "type": "media"},
                {"name": "x", "type": "rtmp", "url": "http://example.com"},
                {"name": "x", "type": "srt"},
                {"name": "x", "type": "Bad Type!"},
                {"name": "x"}):
        reply = await studio.call("POST", base, key=admin_key, json_body=bad)
        assert reply.status == 400, bad
    src = media.json()["id"]
    patched = await studio.call("PATCH", f"{base}/{src}", key=admin_key,
                                json_body={"active": True, "name": "looped"})
    assert patched.json()["active"] is True and patched.json()["name"] == "looped"
    deleted = await studio.call("DELETE", f"{base}/{src}", key=admin_key)
    assert deleted.status == 200 and deleted.json() == {"ok": True}
    again = await studio.call("DELETE", f"{base}/{src}", key=admin_key)
    assert again.status == 404
    assert (await studio.call("PATCH", f"{base}/{src}", key=admin_key,
                              json_body={"name": "x"})).status == 404


async def test_destinations_crud(studio: StudioClient, admin_key: str) -> None:
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    base = f"/v1/studios/{sid}/destinations"
    created = await studio.call("POST", base, key=admin_key, json_body={
        "name": "YouTube", "platform": "youtube", "rtmpUrl": "rtmp://127.0.0.1/live2",
        "streamKey": "abcd-efgh-ijkl", "vertical": True})
    assert created.status == 201
    body = created.json()
    assert body["enabled"] is True and body["vertical"] is True
    assert body["status"] == "offline" and body["hasStreamKey"] is True
    assert "streamKey" not in body
    did = body["id"]
    patched = await studio.call("PATCH", f"{base}/{did}", key=admin_key,
                                json_body={"enabled": False, "platform": "twitch"})
    assert patched.json()["enabled"] is False and patched.json()["platform"] == "twitch"
    cleared = await studio.call("PATCH", f"{base}/{did}", key=admin_key,
                                json_body={"streamKey": ""})
    assert cleared.json()["hasStreamKey"] is False
    for bad in ({"name": "x"}, {"name": "x", "platform": "y", "rtmpUrl": "http://x"},
                {"name": "x", "platform": "y", "connectionId": "c1",
                 "rtmpUrl": "rtmp://h/app", "streamKey": "k"},
                {"name": "x", "platform": "y", "enabled": "true"}):
        assert (await studio.call("POST", base, key=admin_key, json_body=bad)).status == 400
    assert (await studio.call("DELETE", f"{base}/{did}", key=admin_key)).json() == {"ok": True}
    assert (await studio.call("DELETE", f"{base}/{did}", key=admin_key)).status == 404
    assert (await studio.call("GET", base, key=admin_key)).json() == {"data": []}


async def test_another_owners_resources_are_404(app: Quart, studio: StudioClient,
                                                admin_key: str) -> None:
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "mine"})).json()["id"]
    did = (await studio.call("POST", f"/v1/studios/{sid}/destinations", key=admin_key,
                             json_body={"name": "d", "platform": "p"})).json()["id"]
    from gateway.studio.apikeys import ALL_SCOPES

    mallory = await make_key(app, "mallory", ALL_SCOPES)
    assert (await studio.call("GET", "/v1/studios", key=mallory)).json() == {"data": []}
    for method, path in (("GET", f"/v1/studios/{sid}"), ("PATCH", f"/v1/studios/{sid}"),
                         ("GET", f"/v1/studios/{sid}/sources"),
                         ("GET", f"/v1/studios/{sid}/destinations"),
                         ("PATCH", f"/v1/studios/{sid}/destinations/{did}"),
                         ("DELETE", f"/v1/studios/{sid}/destinations/{did}"),
                         ("GET", f"/v1/studios/{sid}/stream-status"),
                         ("POST", f"/v1/studios/{sid}/go-live"),
                         ("POST", f"/v1/studios/{sid}/go-offline")):
        body = {"name": "hijack"} if method == "PATCH" else None
        reply = await studio.call(method, path, key=mallory, json_body=body)
        assert reply.status == 404, (method, path)
    assert (await studio.call("GET", f"/v1/studios/{sid}", key=admin_key)).json()["name"] == "mine"


async def test_go_live_needs_a_source_and_a_destination(studio: StudioClient,
                                                        admin_key: str) -> None:
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    # a state conflict, not a malformed request: 409 `conflict` (it was 400, which the
    # fuzzer's positive_data_acceptance flags for a request the spec calls valid)
    reply = await studio.call("POST", f"/v1/studios/{sid}/go-live", key=admin_key)
    assert reply.status == 409 and "source" in reply.json()["error"]["message"]
    assert reply.json()["error"]["code"] == "conflict"
    await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                      json_body={"name": "cam", "type": "webrtc-input"})
    reply = await studio.call("POST", f"/v1/studios/{sid}/go-live", key=admin_key)
    assert reply.status == 409 and "destination" in reply.json()["error"]["message"]
    status = await studio.call("GET", f"/v1/studios/{sid}/stream-status", key=admin_key)
    assert status.json() == {"live": False}
    assert (await studio.call("POST", f"/v1/studios/{sid}/go-offline",
                              key=admin_key)).json() == {"ok": True}
