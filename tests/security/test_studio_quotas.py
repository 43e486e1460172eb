"""Issue 13, finding 10 (Studio part): per-owner quotas on pending uploads (count and bytes),
studios, sources per studio and destinations per studio; refused as 409 `quota_exceeded`."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from quart import Quart

from gateway.state import EXTENSION
from gateway.studio import apikeys
from tests.studio.conftest import StudioClient, make_key, settings, studio  # noqa: F401
from tests.studio.media_files import png_bytes

GIB = 1024**3


def _quota(reply: object, setting: str) -> None:
    assert reply.status == 409, reply.body  # type: ignore[attr-defined]
    error = reply.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "quota_exceeded" and setting in error["message"], error


async def _reserve(studio: StudioClient, key: str, size: int,  # noqa: F811
                   content_type: str = "video/mp4") -> object:
    return await studio.call("POST", "/v1/media", key=key, json_body={
        "filename": "f", "contentType": content_type, "byteSize": size})


class TestDefaults:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0"}

    async def test_one_key_cannot_reserve_fifty_two_gib_uploads(
            self, app: Quart, studio: StudioClient,  # noqa: F811
    ) -> None:
        key = await make_key(app, "alice", apikeys.ALL_SCOPES)
        accepted = 0
        for _ in range(50):
            reply = await _reserve(studio, key, 2 * GIB)
            if reply.status != 201:  # type: ignore[attr-defined]
                _quota(reply, "STUDIO_MAX_PENDING_UPLOAD")
                break
            accepted += 1
        assert 0 < accepted < 10, accepted


class TestSmallQuotas:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8",
                "STUDIO_MAX_PENDING_UPLOADS": "3", "STUDIO_MAX_PENDING_UPLOAD_BYTES": "3000",
                "STUDIO_MAX_STUDIOS": "2", "STUDIO_MAX_SOURCES_PER_STUDIO": "2",
                "STUDIO_MAX_DESTINATIONS_PER_STUDIO": "2"}

    async def test_pending_upload_count_and_bytes(self, app: Quart,
                                                  studio: StudioClient) -> None:  # noqa: F811
        alice = await make_key(app, "alice", apikeys.ALL_SCOPES)
        bob = await make_key(app, "bob", apikeys.ALL_SCOPES)
        _quota(await _reserve(studio, alice, 3001), "STUDIO_MAX_PENDING_UPLOAD_BYTES")
        assert (await _reserve(studio, alice, 2000)).status == 201  # type: ignore[attr-defined]
        _quota(await _reserve(studio, alice, 1001), "STUDIO_MAX_PENDING_UPLOAD_BYTES")
        data = png_bytes()
        assert len(data) < 500
        first = await _reserve(studio, alice, len(data), "image/png")
        assert (await _reserve(studio, alice, 10)).status == 201  # type: ignore[attr-defined]
        _quota(await _reserve(studio, alice, 1), "STUDIO_MAX_PENDING_UPLOADS")
        # Another owner has quotas of his own.
        assert (await _reserve(studio, bob, 3000)).status == 201  # type: ignore[attr-defined]
        # A finished upload is no longer pending: its slot frees.
        parts = urlsplit(first.json()["uploadUrl"])  # type: ignore[attr-defined]
        put = await studio.call("PUT", f"{parts.path}?{parts.query}", data=data,
                                headers={"Content-Type": "image/png"})
        assert put.status == 200
        await app.extensions[EXTENSION].services["studio.library"].wait_idle()
        assert (await _reserve(studio, alice, 10)).status == 201  # type: ignore[attr-defined]
        _quota(await _reserve(studio, alice, 1), "STUDIO_MAX_PENDING_UPLOADS")

    async def test_studios_sources_and_destinations(self, app: Quart,
                                                    studio: StudioClient) -> None:  # noqa: F811
        alice = await make_key(app, "alice", apikeys.ALL_SCOPES)
        bob = await make_key(app, "bob", apikeys.ALL_SCOPES)
        ids = [(await studio.call("POST", "/v1/studios", key=alice,
                                  json_body={"name": f"s{i}"})).json()["id"] for i in range(2)]
        _quota(await studio.call("POST", "/v1/studios", key=alice, json_body={"name": "s3"}),
               "STUDIO_MAX_STUDIOS")
        assert (await studio.call("POST", "/v1/studios", key=bob,
                                  json_body={"name": "b"})).status == 201
        for sid in ids:  # per studio: both studios take their full share
            for i in range(2):
                assert (await studio.call("POST", f"/v1/studios/{sid}/sources", key=alice,
                                          json_body={"name": f"c{i}", "type": "webcam"})
                        ).status == 201
                assert (await studio.call("POST", f"/v1/studios/{sid}/destinations", key=alice,
                                          json_body={"name": f"d{i}", "platform": "p",
                                                     "rtmpUrl": "rtmp://127.0.0.1:9/live"})
                        ).status == 201
            _quota(await studio.call("POST", f"/v1/studios/{sid}/sources", key=alice,
                                     json_body={"name": "more", "type": "webcam"}),
                   "STUDIO_MAX_SOURCES_PER_STUDIO")
            _quota(await studio.call("POST", f"/v1/studios/{sid}/destinations", key=alice,
                                     json_body={"name": "more", "platform": "p",
                                                "rtmpUrl": "rtmp://127.0.0.1:9/live"}),
                   "STUDIO_MAX_DESTINATIONS_PER_STUDIO")
        # Deleting one frees its slot.
        listed = (await studio.call("GET", f"/v1/studios/{ids[0]}/sources", key=alice)).json()
        gone = listed["data"][0]["id"]
        assert (await studio.call("DELETE", f"/v1/studios/{ids[0]}/sources/{gone}",
                                  key=alice)).status == 200
        assert (await studio.call("POST", f"/v1/studios/{ids[0]}/sources", key=alice,
                                  json_body={"name": "again", "type": "webcam"})).status == 201
