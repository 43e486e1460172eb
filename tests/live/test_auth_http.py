"""Auth tiers, CORS, rate limiting, body limits and records, in-process (no media needed).

An authorized publish/play of the bare `v=0` SDP answers 400 "invalid SDP" and an
unauthorized one 401, so each case checks the authorization decision alone. Admin close of
an unknown room answers 404 when authorized.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from quart.testing import QuartClient

from gateway.app import create_app
from gateway.settings import Settings
from tests import contract

SECRET = "jwt-secret-for-tests"


def token(claims: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode({"alg": alg}, claims, OctKey.import_key(secret), algorithms=[alg])


def exp(seconds: float) -> int:
    return int(time.time() + seconds)


def client_for(tmp_path: Path, **env: str) -> QuartClient:
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path / "data"), **env})
    return create_app(settings).test_client()


async def call(client: QuartClient, method: str, path: str, *, data: str | bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    response = await client.open(path, method=method, data=data, headers=headers or {})
    body = await response.get_data()
    contract.check("live", method, path, response, body)
    return response.status_code, body, response


async def publish_status(client: QuartClient, room: str, headers: dict[str, str]) -> int:
    status, body, _ = await call(client, "POST", f"/api/whip/publish/{room}", data="v=0",
                                 headers={"Content-Type": "application/sdp", **headers})
    if status == 401:
        assert body == b"unauthorized\n"
    else:
        assert status == 400 and body == b'{"error": "invalid SDP"}'
    return status


async def play_status(client: QuartClient, room: str, headers: dict[str, str]) -> int:
    status, _, _ = await call(client, "POST", f"/api/whep/play/{room}", data="v=0",
                              headers={"Content-Type": "application/sdp", **headers})
    return status


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_open_when_nothing_is_configured(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    assert await publish_status(client, "demo", {}) == 400
    assert await play_status(client, "demo", {}) == 400
    status, body, _ = await call(client, "GET", "/api/bootstrap")
    assert status == 200
    import json

    assert json.loads(body) == {"authEnabled": False, "recordEnabled": False,
                                "iceServers": [], "features": {"rooms": True, "records": True}}
    # admin routes are closed without ADMIN_TOKEN or JWT_SECRET
    status, body, _ = await call(client, "POST", "/api/admin/rooms/demo/close")
    assert status == 401 and body == b"unauthorized\n"


async def test_room_tokens_replace_the_global_token(tmp_path: Path) -> None:
    client = client_for(tmp_path, ROOM_TOKENS="vip:room-tok;other:x", AUTH_TOKEN="global")
    cases = [
        ("vip", bearer("room-tok"), 400),
        ("vip", {"X-Auth-Token": "room-tok"}, 400),
        ("vip", {"Authorization": "bearer room-tok"}, 400),  # scheme is case-insensitive
        ("vip", bearer("global"), 401),  # the room's token overrides AUTH_TOKEN
        ("vip", {}, 401),
        ("vip", {"X-Auth-Token": "wrong", **bearer("room-tok")}, 401),  # X-Auth-Token first
        ("demo", bearer("global"), 400),
        ("demo", {"X-Auth-Token": "global"}, 400),
        ("demo", bearer("room-tok"), 401),
        ("demo", {"Authorization": "Basic Z2xvYmFs"}, 401),
        ("demo", {}, 401),
    ]
    for room, headers, expected in cases:
        assert await publish_status(client, room, headers) == expected, (room, headers)
        assert await play_status(client, room, headers) == expected, (room, headers)
    status, body, _ = await call(client, "GET", "/api/bootstrap")
    assert b'"authEnabled":true' in body
    # AUTH_TOKEN never grants admin
    status, _, _ = await call(client, "POST", "/api/admin/rooms/demo/close",
                              headers=bearer("global"))
    assert status == 401


async def test_jwt_claims_expiry_leeway_audience_and_room(tmp_path: Path) -> None:
    client = client_for(tmp_path, JWT_SECRET=SECRET)
    cases = [
        ({"exp": exp(60)}, {}, 400),
        ({"exp": exp(60), "room": "demo"}, {}, 400),
        ({"exp": exp(60), "room": "elsewhere"}, {}, 401),  # wrong-room JWT
        ({"exp": exp(-10)}, {}, 400),  # expired, but within the 30 s leeway
        ({"exp": exp(-120)}, {}, 401),  # expired
        ({"room": "demo"}, {}, 401),  # exp is required
        ({"exp": exp(60), "nbf": exp(300)}, {}, 401),  # not valid yet
        ({"exp": exp(600), "iat": exp(300)}, {}, 401),  # issued in the future
        ({"exp": exp(60)}, {"secret": "another-secret"}, 401),
        ({"exp": exp(60)}, {"alg": "HS384"}, 400),
        ({"exp": exp(60)}, {"alg": "HS512"}, 400),
    ]
    for claims, options, expected in cases:
        value = token(claims, **options)
        assert await publish_status(client, "demo", bearer(value)) == expected, (claims, options)
    good = token({"exp": exp(60)})
    # JWTs are read from Authorization: Bearer only
    assert await publish_status(client, "demo", {"X-Auth-Token": good}) == 401
    unsigned = good.rsplit(".", 1)[0] + "."
    assert await publish_status(client, "demo", bearer(unsigned)) == 401
    assert await publish_status(client, "demo", {}) == 401
    assert await publish_status(client, "demo", bearer("not-a-jwt")) == 401


async def test_jwt_audience_and_admin_claims(tmp_path: Path) -> None:
    client = client_for(tmp_path, JWT_SECRET=SECRET, JWT_AUDIENCE="live-api",
                        ADMIN_TOKEN="admin-tok")
    for claims, expected in [
        ({"exp": exp(60), "aud": "live-api"}, 400),
        ({"exp": exp(60), "aud": ["other", "live-api"]}, 400),
        ({"exp": exp(60), "aud": "other"}, 401),
        ({"exp": exp(60)}, 401),  # audience required once configured
    ]:
        assert await publish_status(client, "demo", bearer(token(claims))) == expected, claims

    async def admin(headers: dict[str, str]) -> int:
        status, body, _ = await call(client, "POST", "/api/admin/rooms/nowhere/close",
                                     headers=headers)
        if status == 404:
            assert body == b'{"error": "room not found"}'
        return status

    aud = {"aud": "live-api", "exp": exp(60)}
    assert await admin(bearer("admin-tok")) == 404
    assert await admin({"X-Auth-Token": "admin-tok"}) == 404
    assert await admin(bearer("wrong")) == 401
    assert await admin({}) == 401
    assert await admin(bearer(token({**aud, "role": "admin"}))) == 404
    assert await admin(bearer(token({**aud, "role": "ADMIN"}))) == 404
    assert await admin(bearer(token({**aud, "admin": True}))) == 404
    assert await admin(bearer(token({**aud, "admin": 1}))) == 404
    assert await admin(bearer(token({**aud, "admin": "true"}))) == 401
    assert await admin(bearer(token({**aud, "admin": False}))) == 401
    assert await admin(bearer(token({**aud, "role": "viewer"}))) == 401
    assert await admin(bearer(token({**aud, "role": "admin", "exp": exp(-120)}))) == 401
    assert await admin(bearer(token({"exp": exp(60), "role": "admin"}))) == 401  # no aud
    # an admin JWT is also a valid room JWT
    assert await publish_status(client, "demo", bearer(token({**aud, "role": "admin"}))) == 400


async def test_tokens_and_jwt_together(tmp_path: Path) -> None:
    client = client_for(tmp_path, JWT_SECRET=SECRET, AUTH_TOKEN="global",
                        ROOM_TOKENS="vip:room-tok")
    good = token({"exp": exp(60)})
    assert await publish_status(client, "demo", bearer("global")) == 400
    assert await publish_status(client, "demo", bearer(good)) == 400
    assert await publish_status(client, "vip", bearer(good)) == 400
    assert await publish_status(client, "vip", bearer(token({"exp": exp(60), "room": "demo"}))) \
        == 401
    assert await publish_status(client, "vip", bearer("global")) == 401


async def test_session_resources_need_the_rooms_auth(tmp_path: Path) -> None:
    client = client_for(tmp_path, AUTH_TOKEN="global")
    path = "/api/whip/publish/demo/0123456789abcdef0123456789abcdef"
    status, _, _ = await call(client, "DELETE", path)
    assert status == 401
    status, body, _ = await call(client, "DELETE", path, headers=bearer("global"))
    assert status == 404 and body == b'{"error": "session not found"}'
    status, _, _ = await call(client, "PATCH", path.replace("whip/publish", "whep/play"),
                              data="a=end-of-candidates\r\n",
                              headers={"Content-Type": "application/trickle-ice-sdpfrag"})
    assert status == 401


async def test_rate_limit_is_per_ip_and_plain_text(tmp_path: Path) -> None:
    client = client_for(tmp_path, RATE_LIMIT_RPS="0.5", RATE_LIMIT_BURST="2")
    statuses = [(await call(client, "GET", "/api/rooms"))[0] for _ in range(2)]
    assert statuses == [200, 200]
    status, body, response = await call(client, "GET", "/api/rooms")
    assert status == 429 and body == b"too many requests\n"
    assert response.headers["content-type"].startswith("text/plain")
    assert int(response.headers["Retry-After"]) >= 1
    status, _, _ = await call(client, "POST", "/api/whip/publish/demo", data="v=0")
    assert status == 429
    # session resources, health and metrics are not limited
    status, _, _ = await call(client, "DELETE", "/api/whep/play/demo/" + "0" * 32)
    assert status == 404
    assert (await call(client, "GET", "/healthz"))[0] == 200
    assert (await call(client, "GET", "/metrics"))[0] == 200


async def test_cors_as_upstream(tmp_path: Path) -> None:
    star = client_for(tmp_path / "a")
    _, _, response = await call(star, "GET", "/api/rooms", headers={"Origin": "https://x.test"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, Authorization, X-Auth-Token")

    client = client_for(tmp_path / "b", ALLOWED_ORIGIN="app.example")
    _, _, response = await call(client, "GET", "/api/rooms",
                                headers={"Origin": "https://app.example:8443"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example:8443"
    assert "Origin" in response.headers["Vary"]
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    _, _, response = await call(client, "GET", "/api/rooms",
                                headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers

    status, _, response = await call(client, "OPTIONS", "/api/whip/publish/demo", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    response = await client.options("/api/whip/publish/demo/abc", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"})
    assert response.status_code == 204
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


async def test_options_advertises_ice_servers(tmp_path: Path) -> None:
    client = client_for(tmp_path, STUN_URLS="stun:stun.example.net:3478",
                        TURN_URLS="turn:turn.example.net:3478?transport=udp",
                        TURN_USERNAME="user", TURN_PASSWORD="pass")
    status, _, response = await call(client, "OPTIONS", "/api/whep/play/demo")
    assert status == 204
    links = response.headers.get_all("Link")
    assert '<stun:stun.example.net:3478>; rel="ice-server"' in links
    assert ('<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="user"; '
            'credential="pass"; credential-type="password"') in links
    status, body, _ = await call(client, "GET", "/api/bootstrap")
    import json

    assert json.loads(body)["iceServers"] == [
        {"urls": ["stun:stun.example.net:3478"]},
        {"urls": ["turn:turn.example.net:3478?transport=udp"], "username": "user",
         "credential": "pass"},
    ]


async def test_sdp_body_cap_is_one_mebibyte(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    big = "v=0\r\n" + "a=x" * (1 << 19)
    status, body, _ = await call(client, "POST", "/api/whip/publish/demo", data=big,
                                 headers={"Content-Type": "application/sdp"})
    assert status == 413 and body == b'{"error": "request body too large"}'
    status, _, _ = await call(client, "POST", "/api/whep/play/demo", data=big)
    assert status == 413


async def test_records_listing_download_ranges_and_traversal(tmp_path: Path) -> None:
    records = tmp_path / "rec"
    records.mkdir()
    (records / "demo_video1_1700000000.ivf").write_bytes(b"DKIF" + bytes(range(60)))
    (records / "demo_audio0_1700000001.ogg").write_bytes(b"OggS" + b"\0" * 20)
    (records / "notes.txt").write_text("not a recording")
    (tmp_path / "secret.ivf").write_bytes(b"outside")
    import os

    os.utime(records / "demo_video1_1700000000.ivf", (1_700_000_000, 1_700_000_000))
    os.utime(records / "demo_audio0_1700000001.ogg", (1_700_000_100, 1_700_000_100))

    disabled = client_for(tmp_path / "a", RECORD_DIR=str(records))
    status, body, _ = await call(disabled, "GET", "/api/records")
    assert status == 200 and b"demo_audio0" in body
    status, _, _ = await call(disabled, "GET", "/records/demo_video1_1700000000.ivf")
    assert status == 404  # served only with RECORD_ENABLED=1

    client = client_for(tmp_path / "b", RECORD_DIR=str(records), RECORD_ENABLED="1")
    import json

    status, body, _ = await call(client, "GET", "/api/records")
    assert json.loads(body) == [
        {"name": "demo_audio0_1700000001.ogg", "size": 24, "modTime": "2023-11-14T22:15:00Z",
         "url": "/records/demo_audio0_1700000001.ogg"},
        {"name": "demo_video1_1700000000.ivf", "size": 64, "modTime": "2023-11-14T22:13:20Z",
         "url": "/records/demo_video1_1700000000.ivf"},
    ]
    status, body, response = await call(client, "GET", "/records/demo_video1_1700000000.ivf")
    assert status == 200 and body.startswith(b"DKIF") and len(body) == 64
    assert response.headers["content-type"] == "video/x-ivf"
    status, body, response = await call(client, "GET", "/records/demo_video1_1700000000.ivf",
                                        headers={"Range": "bytes=4-7"})
    assert status == 206 and body == bytes(range(4))
    assert response.headers["Content-Range"] == "bytes 4-7/64"
    for hostile in ("..%2Fsecret.ivf", "%2E%2E%2Fsecret.ivf", "notes.txt", ".hidden.ivf",
                    "..", "nothing.ivf"):
        response = await client.get(f"/records/{hostile}")
        assert response.status_code == 404, hostile
    assert (await client.get("/records/../secret.ivf")).status_code == 404


async def test_web_pages_are_served(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    for page in ("index.html", "publisher.html", "player.html", "whip.js"):
        response = await client.get(f"/web/{page}")
        assert response.status_code == 200, page
        text = (await response.get_data()).decode()
        assert "Token" in text or "negotiate" in text
    assert (await client.get("/web/../gateway/live/routes.py")).status_code == 404
    assert (await client.get("/web/nothing.html")).status_code == 404


@pytest.mark.parametrize("room", ["", "a" * 65, "dots.dots", "sp ace"])
async def test_invalid_room_names(tmp_path: Path, room: str) -> None:
    client = client_for(tmp_path)
    response = await client.post(f"/api/whip/publish/{room}", data="v=0")
    if room:
        assert response.status_code == 400
        assert await response.get_json() == {"error": "invalid room"}
    else:
        assert response.status_code in (400, 404)
