"""Media library: reserve, upload to the presigned URL, PyAV probe, list, refuse bad uploads."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from quart import Quart

from gateway.settings import Settings
from gateway.state import EXTENSION
from gateway.studio.library import StudioLibrary
from tests import contract
from tests.studio.conftest import StudioClient, make_key
from tests.studio.live_helpers import ADMIN_KEY, start_gateway
from tests.studio.media_files import mp4_bytes, opus_bytes, png_bytes


def _library(app: Quart) -> StudioLibrary:
    return app.extensions[EXTENSION].services["studio.library"]


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _reserve(studio: StudioClient, key: str, data: bytes, content_type: str,
                   filename: str = "clip", size: int | None = None) -> dict[str, str]:
    reply = await studio.call("POST", "/v1/media", key=key, json_body={
        "filename": filename, "contentType": content_type,
        "byteSize": len(data) if size is None else size})
    assert reply.status == 201, reply.body
    return reply.json()


async def _put(studio: StudioClient, upload_url: str, data: bytes, content_type: str) -> int:
    reply = await studio.call("PUT", _local(upload_url), data=data,
                              headers={"Content-Type": content_type})
    return reply.status


def _leftovers(settings: Settings) -> list[Path]:
    root = settings.data_dir / "studio" / "media"
    return sorted(root.iterdir()) if root.exists() else []


async def _assets(studio: StudioClient, key: str) -> dict[str, dict[str, object]]:
    reply = await studio.call("GET", "/v1/media?limit=200", key=key)
    assert reply.status == 200
    return {a["id"]: a for a in reply.json()["data"]}


async def test_uploads_become_ready_with_their_real_kind(app: Quart, studio: StudioClient,
                                                        admin_key: str,
                                                        settings: Settings) -> None:
    cases = [  # (bytes, declared content type, expected kind)
        (mp4_bytes(), "video/mp4", "video"),
        (png_bytes(), "image/png", "image"),
        (opus_bytes(), "audio/ogg", "audio"),
        (opus_bytes(), "video/webm", "audio"),  # the real streams decide, not the label
    ]
    ids = {}
    for data, content_type, kind in cases:
        upload = await _reserve(studio, admin_key, data, content_type)
        assert upload["kind"] == content_type.split("/")[0]
        assert upload["uploadUrl"].startswith("http")
        assert await _put(studio, upload["uploadUrl"], data, content_type) == 200
        ids[upload["assetId"]] = (kind, len(data), upload["objectKey"])
    await _library(app).wait_idle()
    listed = await _assets(studio, admin_key)
    for asset_id, (kind, size, object_key) in ids.items():
        asset = listed[asset_id]
        assert (asset["status"], asset["kind"], asset["byteSize"]) == ("READY", kind, size)
        stored = settings.data_dir / str(object_key)
        assert stored.stat().st_size == size
    assert not [p for p in _leftovers(settings) if p.name.endswith(".part")]

    # A READY asset is a `media` source: its objectKey is the source url.
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    video_key = next(key for kind, _, key in ids.values() if kind == "video")
    source = await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                               json_body={"name": "clip", "type": "media", "url": video_key})
    assert source.status == 201, source.body
    by_id = next(asset_id for asset_id, (kind, _, _) in ids.items() if kind == "video")
    source = await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                               json_body={"name": "by id", "type": "media", "url": by_id})
    assert source.status == 201, source.body


async def test_garbage_becomes_failed_with_a_reason(app: Quart, studio: StudioClient,
                                                    admin_key: str, settings: Settings) -> None:
    garbage = b"definitely not a media file\n" * 300
    upload = await _reserve(studio, admin_key, garbage, "video/mp4")
    assert await _put(studio, upload["uploadUrl"], garbage, "video/mp4") == 200
    await _library(app).wait_idle()
    asset = (await _assets(studio, admin_key))[upload["assetId"]]
    assert asset["status"] == "FAILED"
    assert "unreadable" in str(asset["statusReason"])
    assert str(settings.data_dir) not in str(asset["statusReason"])
    assert _leftovers(settings) == []  # a failed file cannot become a source
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    source = await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                               json_body={"name": "x", "type": "media",
                                          "url": upload["objectKey"]})
    assert source.status == 400
    source = await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                               json_body={"name": "x", "type": "media",
                                          "url": upload["assetId"]})
    assert source.status == 400


async def test_expired_tampered_and_mismatched_uploads_are_refused(
        app: Quart, studio: StudioClient, admin_key: str, settings: Settings) -> None:
    data = png_bytes()
    upload = await _reserve(studio, admin_key, data, "image/png")
    other = await _reserve(studio, admin_key, data, "image/png")
    parts = urlsplit(upload["uploadUrl"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = parts.path
    library = _library(app)
    asset = await library.get_asset("alice", upload["assetId"])
    expired = int(time.time()) - 5
    bad = [
        {**query, "signature": "0" * 64},
        {**query, "signature": query["signature"][:-1] + ("0" if query["signature"][-1] != "0"
                                                          else "1")},
        {**query, "expires": str(int(query["expires"]) + 3600)},
        {"expires": str(expired), "signature": library.sign(asset, expired)},
        {"expires": query["expires"]},
        {"signature": query["signature"]},
        {**query, "expires": "soon"},
        {**query, "signature": "sign\u00e9\u00e9"},
    ]
    for params in bad:
        reply = await studio.call("PUT", f"{path}?{urlencode(params)}", data=data,
                                  headers={"Content-Type": "image/png"})
        assert reply.status == 401, params
        assert reply.json()["error"]["code"] == "invalid_key"
    # Another asset's valid signature does not open this one.
    other_query = urlsplit(other["uploadUrl"]).query
    reply = await studio.call("PUT", f"{path}?{other_query}", data=data,
                              headers={"Content-Type": "image/png"})
    assert reply.status == 401
    reply = await studio.call("PUT", f"/v1/media/med_{'0' * 26}/upload?{parts.query}",
                              data=data, headers={"Content-Type": "image/png"})
    assert reply.status == 401
    # Only the reserved content type.
    assert await _put(studio, upload["uploadUrl"], data, "image/jpeg") == 415
    assert _leftovers(settings) == []
    # The real upload still works once, then the URL is spent.
    assert await _put(studio, upload["uploadUrl"], data, "image/png; charset=binary") == 200
    assert await _put(studio, upload["uploadUrl"], data, "image/png") == 409
    await library.wait_idle()
    assert (await _assets(studio, admin_key))[upload["assetId"]]["status"] == "READY"


async def test_too_large_or_short_bodies_leave_nothing(app: Quart, studio: StudioClient,
                                                       admin_key: str,
                                                       settings: Settings) -> None:
    data = mp4_bytes()
    upload = await _reserve(studio, admin_key, data, "video/mp4", size=len(data) - 10)
    reply = await studio.call("PUT", _local(upload["uploadUrl"]), data=data,
                              headers={"Content-Type": "video/mp4"})
    assert reply.status == 413 and reply.json()["error"]["code"] == "invalid_request"
    short = await _reserve(studio, admin_key, data, "video/mp4", size=len(data) + 10)
    assert await _put(studio, short["uploadUrl"], data, "video/mp4") == 400
    assert _leftovers(settings) == []
    listed = await _assets(studio, admin_key)
    assert listed[upload["assetId"]]["status"] == "UPLOADING"


@pytest.mark.parametrize("studio_env", [{"STUDIO_RATE_LIMIT_RPS": "0",
                                         "STUDIO_MAX_PENDING_UPLOADS": "10"}])
async def test_reserve_validation_listing_scopes_and_ownership(app: Quart, studio: StudioClient,
                                                               admin_key: str) -> None:
    for bad in ({}, {"filename": "a", "contentType": "video/mp4"},
                {"filename": "a", "contentType": "text/plain", "byteSize": 5},
                {"filename": "a/b.mp4", "contentType": "video/mp4", "byteSize": 5},
                {"filename": "a", "contentType": "video/mp4", "byteSize": 0},
                {"filename": "a", "contentType": "video/mp4", "byteSize": "5"},
                {"filename": "a", "contentType": "video/mp4", "byteSize": 1 << 40}):
        reply = await studio.call("POST", "/v1/media", key=admin_key, json_body=bad)
        assert reply.status == 400, bad
        assert reply.json()["error"]["code"] == "invalid_request"
    created = [(await _reserve(studio, admin_key, b"x", "audio/ogg", filename=f"f{i}",
                               size=10))["assetId"] for i in range(5)]
    bob = await make_key(app, "bob", ["media:read", "media:write"])
    await _reserve(studio, bob, b"x", "audio/ogg", size=10)
    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/media?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await studio.call("GET", path, key=admin_key)).json()
        seen += [a["id"] for a in body["data"]]
        cursor = body.get("nextCursor")
        if cursor is None:
            break
    assert seen == created
    folder = await studio.call("POST", "/v1/media", key=admin_key, json_body={
        "filename": "intro.mp4", "contentType": "video/mp4", "byteSize": 3, "folder": "intros"})
    listed = (await _assets(studio, admin_key))[folder.json()["assetId"]]
    assert listed["folder"] == "intros" and listed["filename"] == "intro.mp4"
    reader = await make_key(app, "alice", ["media:read"])
    reply = await studio.call("POST", "/v1/media", key=reader, json_body={
        "filename": "a", "contentType": "video/mp4", "byteSize": 5})
    assert reply.status == 403 and reply.json()["error"]["requiredScope"] == "media:write"
    writer = await make_key(app, "alice", ["media:write"])
    reply = await studio.call("GET", "/v1/media", key=writer)
    assert reply.status == 403 and reply.json()["error"]["requiredScope"] == "media:read"
    assert (await studio.call("GET", "/v1/media")).status == 401


class TestWritesDisabled:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0", "PUBLIC_API_WRITE_ENABLED": "off"}

    async def test_reserve_and_upload_are_503(self, app: Quart, studio: StudioClient) -> None:
        key = await make_key(app, "alice", ["media:read", "media:write"])
        reply = await studio.call("POST", "/v1/media", key=key, json_body={
            "filename": "a", "contentType": "video/mp4", "byteSize": 5})
        assert reply.status == 503
        asset, query = await _library(app).create_upload("alice", "a", "video/mp4", 5, None)
        reply = await studio.call("PUT", f"/v1/media/{asset.id}/upload?{query}", data=b"12345",
                                  headers={"Content-Type": "video/mp4"})
        assert reply.status == 503 and reply.json()["error"]["code"] == "write_disabled"
        assert (await studio.call("GET", "/v1/media", key=key)).status == 200


def test_streamed_uploads_over_real_http(tmp_path: Path) -> None:
    """Chunked bodies (no Content-Length) are counted as they stream: too long is cut off."""
    server = start_gateway(tmp_path / "data")
    try:
        client = httpx.Client(base_url=server.base_url, timeout=30,
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        data = opus_bytes(2.0)

        def reserve(size: int) -> str:
            reply = client.post("/v1/media", json={"filename": "a.ogg",
                                                   "contentType": "audio/ogg", "byteSize": size})
            contract.check("studio", "POST", "/v1/media", reply)
            assert reply.status_code == 201
            return str(reply.json()["uploadUrl"])

        def chunks(payload: bytes, size: int = 4096):  # type: ignore[no-untyped-def]
            for offset in range(0, len(payload), size):
                yield payload[offset:offset + size]

        too_small = reserve(len(data) // 2)
        reply = httpx.put(too_small, content=chunks(data), timeout=30,
                          headers={"Content-Type": "audio/ogg"})
        contract.check("studio", "PUT", _local(too_small), reply)
        assert reply.status_code == 413
        assert list((tmp_path / "data" / "studio" / "media").iterdir()) == []

        good = reserve(len(data))
        reply = httpx.put(good, content=chunks(data), timeout=30,
                          headers={"Content-Type": "audio/ogg"})
        contract.check("studio", "PUT", _local(good), reply)
        assert reply.status_code == 200, reply.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listed = client.get("/v1/media")
            contract.check("studio", "GET", "/v1/media", listed)
            asset = listed.json()["data"][-1]
            if asset["status"] != "UPLOADING":
                break
            time.sleep(0.2)
        assert (asset["status"], asset["kind"]) == ("READY", "audio")
    finally:
        assert server.stop() == 0, server.log()[-5000:]
    assert "Traceback" not in server.log(), server.log()[-5000:]


async def test_a_browser_on_another_origin_may_put_to_the_upload_url(
        app: Quart, studio: StudioClient, admin_key: str) -> None:
    upload = await _reserve(studio, admin_key, b"x" * 10, "image/png")
    reply = await studio.call("OPTIONS", _local(upload["uploadUrl"]), check=False, headers={
        "Origin": "https://editor.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"})
    assert reply.status in (200, 204)
    assert "PUT" in reply.headers["Access-Control-Allow-Methods"]
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
