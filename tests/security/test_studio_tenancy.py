"""Issue 13, finding 1: every id a Studio client passes resolves only within the key's owner.

Owner B (bob) tries to read, use and change owner A's (alice's) studios, sources,
destinations, media assets and connections; every try must answer exactly as for an id that
does not exist at all, and leave A's resources as they were. A `media` source names one of
the caller's own READY library assets (by id or objectKey) and nothing else: no path text
reaches the filesystem.
"""

from __future__ import annotations

import pytest
from quart import Quart
from sqlalchemy import delete, update

from gateway.state import EXTENSION
from gateway.studio import apikeys
from gateway.studio.models_part2 import StudioMediaAsset
from tests.studio.conftest import (  # noqa: F401
    StudioClient,
    make_key,
    settings,
    studio,
    upload_media,
)
from tests.studio.media_files import mp4_bytes

MISSING = {"std": "std_" + "0" * 26, "src": "src_" + "0" * 26, "dst": "dst_" + "0" * 26,
           "med": "med_" + "0" * 26, "con": "con_" + "0" * 26}


@pytest.fixture
def studio_env() -> dict[str, str]:
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}


@pytest.fixture
async def keys(app: Quart) -> tuple[str, str]:
    return (await make_key(app, "alice", apikeys.ALL_SCOPES),
            await make_key(app, "bob", apikeys.ALL_SCOPES))


async def _new_studio(studio: StudioClient, key: str, name: str) -> str:  # noqa: F811
    reply = await studio.call("POST", "/v1/studios", key=key, json_body={"name": name})
    assert reply.status == 201, reply.body
    return str(reply.json()["id"])


def _error(reply: object) -> tuple[int, str, str]:
    body = reply.json()["error"]  # type: ignore[attr-defined]
    return reply.status, body["code"], body["message"]  # type: ignore[attr-defined]


async def _same_as_missing(studio: StudioClient, key: str, method: str,  # noqa: F811
                           theirs: str, missing: str, body: object = None) -> None:
    """`theirs` (another owner's) answers exactly like `missing` (nobody's)."""
    got = await studio.call(method, theirs, key=key, json_body=body)
    expected = await studio.call(method, missing, key=key, json_body=body)
    assert got.status in (400, 404), (method, theirs, got.body)
    assert _error(got) == _error(expected), (method, theirs, got.body, expected.body)


async def _alice_world(studio: StudioClient, alice: str) -> dict[str, str]:  # noqa: F811
    sid = await _new_studio(studio, alice, "alice's")
    src = (await studio.call("POST", f"/v1/studios/{sid}/sources", key=alice,
                             json_body={"name": "cam", "type": "webrtc-input"})).json()["id"]
    dst = (await studio.call("POST", f"/v1/studios/{sid}/destinations", key=alice, json_body={
        "name": "yt", "platform": "youtube", "rtmpUrl": "rtmp://127.0.0.1:9/live",
        "streamKey": "alice-secret"})).json()["id"]
    con = (await studio.call("POST", "/v1/connections", key=alice, json_body={
        "connectionType": "manual", "platform": "custom", "displayName": "alice rtmp",
        "rtmpUrl": "rtmp://127.0.0.1:9/live", "streamKey": "alice-con-key"})).json()["id"]
    return {"std": sid, "src": src, "dst": dst, "con": con}


async def test_studios_of_another_owner(studio: StudioClient, keys: tuple[str, str]) -> None:  # noqa: F811
    alice, bob = keys
    a = await _alice_world(studio, alice)
    theirs, missing = f"/v1/studios/{a['std']}", f"/v1/studios/{MISSING['std']}"
    await _same_as_missing(studio, bob, "GET", theirs, missing)
    await _same_as_missing(studio, bob, "PATCH", theirs, missing, {"name": "pwned"})
    for tail in ("/stream-status", "/sources", "/destinations"):
        await _same_as_missing(studio, bob, "GET", theirs + tail, missing + tail)
    for tail in ("/go-live", "/go-offline"):
        await _same_as_missing(studio, bob, "POST", theirs + tail, missing + tail)
    await _same_as_missing(studio, bob, "POST", theirs + "/sources",
                           missing + "/sources", {"name": "x", "type": "webrtc-input"})
    await _same_as_missing(studio, bob, "POST", theirs + "/destinations",
                           missing + "/destinations",
                           {"name": "x", "platform": "p", "rtmpUrl": "rtmp://127.0.0.1:9/x"})
    listed = (await studio.call("GET", "/v1/studios", key=bob)).json()["data"]
    assert a["std"] not in {s["id"] for s in listed}
    mine = (await studio.call("GET", theirs, key=alice)).json()
    assert mine["name"] == "alice's"


async def test_sources_of_another_owner(studio: StudioClient, keys: tuple[str, str]) -> None:  # noqa: F811
    alice, bob = keys
    a = await _alice_world(studio, alice)
    own = await _new_studio(studio, bob, "bob's")
    for sid in (a["std"], own):  # through her studio, and smuggled through his own
        theirs = f"/v1/studios/{sid}/sources/{a['src']}"
        missing = f"/v1/studios/{sid}/sources/{MISSING['src']}"
        await _same_as_missing(studio, bob, "PATCH", theirs, missing,
                               {"name": "pwned", "active": False})
        await _same_as_missing(studio, bob, "DELETE", theirs, missing)
    whip = await studio.call("POST", f"/v1/studios/{a['std']}/sources/{a['src']}/whip",
                             key=bob, data=b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
                             headers={"Content-Type": "application/sdp"})
    assert whip.status == 404
    listed = (await studio.call("GET", f"/v1/studios/{own}/sources", key=bob)).json()["data"]
    assert listed == []
    kept = (await studio.call("GET", f"/v1/studios/{a['std']}/sources", key=alice)).json()
    assert [(s["id"], s["name"], s["active"]) for s in kept["data"]] == [(a["src"], "cam", True)]


async def test_destinations_of_another_owner(studio: StudioClient,  # noqa: F811
                                             keys: tuple[str, str]) -> None:
    alice, bob = keys
    a = await _alice_world(studio, alice)
    own = await _new_studio(studio, bob, "bob's")
    for sid in (a["std"], own):
        theirs = f"/v1/studios/{sid}/destinations/{a['dst']}"
        missing = f"/v1/studios/{sid}/destinations/{MISSING['dst']}"
        await _same_as_missing(studio, bob, "PATCH", theirs, missing,
                               {"rtmpUrl": "rtmp://127.0.0.1:1/steal", "enabled": True})
        await _same_as_missing(studio, bob, "DELETE", theirs, missing)
    kept = (await studio.call("GET", f"/v1/studios/{a['std']}/destinations",
                              key=alice)).json()["data"]
    assert [(d["id"], d["rtmpUrl"]) for d in kept] == [(a["dst"], "rtmp://127.0.0.1:9/live")]


async def test_media_assets_of_another_owner(app: Quart, studio: StudioClient,  # noqa: F811
                                             keys: tuple[str, str]) -> None:
    alice, bob = keys
    asset = await upload_media(app, studio, alice, mp4_bytes())
    own = await _new_studio(studio, bob, "bob's")
    sources = f"/v1/studios/{own}/sources"

    async def refused(url: str, expected: tuple[int, str, str]) -> None:
        reply = await studio.call("POST", sources, key=bob,
                                  json_body={"name": "x", "type": "media", "url": url})
        assert _error(reply) == expected, (url, reply.body)

    baseline = await studio.call("POST", sources, key=bob, json_body={
        "name": "x", "type": "media", "url": MISSING["med"]})
    expected = _error(baseline)
    assert expected[0] in (400, 404)
    for url in (asset["assetId"], asset["objectKey"], f"file://{asset['objectKey']}",
                "nope.mp4", "studio/media/" + MISSING["med"]):
        await refused(url, expected)
    listed = (await studio.call("GET", "/v1/media", key=bob)).json()["data"]
    assert asset["assetId"] not in {m["id"] for m in listed}
    # Bob's own READY asset works; pointing it at Alice's afterwards does not.
    mine = await upload_media(app, studio, bob, mp4_bytes())
    created = await studio.call("POST", sources, key=bob, json_body={
        "name": "mine", "type": "media", "url": mine["assetId"]})
    assert created.status == 201, created.body
    patched = await studio.call("PATCH", f"{sources}/{created.json()['id']}", key=bob,
                                json_body={"url": asset["assetId"]})
    assert _error(patched) == expected


@pytest.mark.parametrize("path", [
    "mediagate.db", "host/../mediagate.db", "./mediagate.db", "/etc/passwd",
    "file:///etc/passwd", "../data/mediagate.db", "studio/media", "studio/../mediagate.db-wal",
])
async def test_media_source_urls_never_reach_the_filesystem(
        studio: StudioClient, keys: tuple[str, str], path: str,  # noqa: F811
) -> None:
    """No free path: files that exist and files that do not are refused alike."""
    alice, _ = keys
    sid = await _new_studio(studio, alice, "s")
    reply = await studio.call("POST", f"/v1/studios/{sid}/sources", key=alice,
                              json_body={"name": "x", "type": "media", "url": path})
    absent = await studio.call("POST", f"/v1/studios/{sid}/sources", key=alice,
                               json_body={"name": "x", "type": "media",
                                          "url": "no-such-file-anywhere.mp4"})
    assert _error(reply) == _error(absent), reply.body
    assert reply.status in (400, 404)


async def test_media_is_resolved_again_at_go_live(app: Quart, studio: StudioClient,  # noqa: F811
                                                  keys: tuple[str, str]) -> None:
    alice, _ = keys
    asset = await upload_media(app, studio, alice, mp4_bytes())
    sid = await _new_studio(studio, alice, "s")
    created = await studio.call("POST", f"/v1/studios/{sid}/sources", key=alice, json_body={
        "name": "clip", "type": "media", "url": asset["objectKey"]})
    assert created.status == 201, created.body
    await studio.call("POST", f"/v1/studios/{sid}/destinations", key=alice, json_body={
        "name": "d", "platform": "p", "rtmpUrl": "rtmp://127.0.0.1:9/live"})
    db = app.extensions[EXTENSION].db
    for change in (update(StudioMediaAsset).values(status="FAILED"), delete(StudioMediaAsset)):
        async with db.session() as session:
            await session.execute(change.where(StudioMediaAsset.id == asset["assetId"]))
        reply = await studio.call("POST", f"/v1/studios/{sid}/go-live", key=alice)
        assert reply.status == 409, reply.body  # the studio's state: `conflict`
        assert "media" in reply.json()["error"]["message"]
        status = (await studio.call("GET", f"/v1/studios/{sid}/stream-status", key=alice)).json()
        assert status["live"] is False


async def test_connections_of_another_owner(studio: StudioClient,  # noqa: F811
                                            keys: tuple[str, str]) -> None:
    alice, bob = keys
    a = await _alice_world(studio, alice)
    await _same_as_missing(studio, bob, "DELETE", f"/v1/connections/{a['con']}",
                           f"/v1/connections/{MISSING['con']}")
    own = await _new_studio(studio, bob, "bob's")
    body = {"name": "steal", "platform": "custom"}
    bound = await studio.call("POST", f"/v1/studios/{own}/destinations", key=bob,
                              json_body={**body, "connectionId": a["con"]})
    nobody = await studio.call("POST", f"/v1/studios/{own}/destinations", key=bob,
                               json_body={**body, "connectionId": MISSING["con"]})
    assert bound.status in (400, 404) and _error(bound) == _error(nobody), bound.body
    assert (await studio.call("GET", "/v1/connections", key=bob)).json()["data"] == []
    assert [c["id"] for c in (await studio.call("GET", "/v1/connections",
                                                key=alice)).json()["data"]] == [a["con"]]
