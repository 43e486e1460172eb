"""Linked accounts: OAuth 2 linking (PKCE, state) against a local provider, refresh,
provider-side revocation -> needs_reauth, unlink with revocation, manual connections."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from quart import Quart
from sqlalchemy import text, update

from gateway.state import EXTENSION
from gateway.studio.connections import ConnectionService
from gateway.studio.models_part2 import StudioConnection
from tests.studio.conftest import StudioClient, make_key
from tests.studio.oauth_provider import CLIENT_SECRET, Provider, oauth_provider

STREAM_KEY = "manual-stream-key-" + "5c" * 8


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oauth_provider() as running:
        yield running


@pytest.fixture
def studio_env(provider: Provider) -> dict[str, str]:
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8",
            "STUDIO_OAUTH_PROVIDERS": json.dumps({"testtv": provider.config()})}


def _service(app: Quart) -> ConnectionService:
    return app.extensions[EXTENSION].services["studio.connections"]


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _authorize(url: str) -> str:
    """The user's browser at the provider: approved, redirected back to the gateway."""
    response = await asyncio.to_thread(httpx.get, url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])


async def _link(studio: StudioClient, key: str, body: dict[str, str] | None = None) -> str:
    started = await studio.call("POST", "/v1/connections/oauth/testtv/start", key=key,
                                json_body=body)
    assert started.status == 201, started.body
    return await _authorize(started.json()["authorizationUrl"])


async def test_link_list_refresh_revoke_unlink(app: Quart, studio: StudioClient,
                                               admin_key: str, provider: Provider,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    bodies: list[bytes] = []
    providers = await studio.call("GET", "/v1/connections/providers", key=admin_key)
    assert providers.json()["data"] == [{"platform": "testtv", "displayName": "Test Platform",
                                        "scopes": ["profile", "live.write"]}]
    started = await studio.call("POST", "/v1/connections/oauth/testtv/start", key=admin_key)
    assert started.status == 201
    query = parse_qs(urlsplit(started.json()["authorizationUrl"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["profile live.write"]
    assert query["redirect_uri"][0].endswith("/v1/connections/oauth/testtv/callback")
    callback = await _authorize(started.json()["authorizationUrl"])
    linked = await studio.call("GET", _local(callback))
    assert linked.status == 200 and b"Streamer u1" in linked.body
    # The state is single-use.
    assert (await studio.call("GET", _local(callback))).status == 400

    listed = await studio.call("GET", "/v1/connections", key=admin_key)
    bodies.append(listed.body)
    (connection,) = listed.json()["data"]
    assert {k: connection[k] for k in ("platform", "connectionType", "displayName",
                                       "externalUserId", "status", "grantedScopes")} == {
        "platform": "testtv", "connectionType": "oauth", "displayName": "Streamer u1",
        "externalUserId": "u1", "status": "active", "grantedScopes": ["profile", "live.write"]}
    assert connection["avatarUrl"] == "https://img.invalid/u1.png"
    first_expiry = connection["expiresAt"]

    # The token expires within the refresh margin: refreshed (the provider rotates it).
    (grant,) = provider.grants
    old_refresh = grant.refresh_token
    provider.expires_in = 3600
    assert await _service(app).refresh_due() == 1
    assert grant.refresh_token != old_refresh
    assert [f["grant_type"] for p, f in provider.log if p == "/token"] == [
        "authorization_code", "refresh_token"]
    refreshed = (await studio.call("GET", "/v1/connections", key=admin_key)).json()["data"][0]
    assert refreshed["status"] == "active" and refreshed["expiresAt"] > first_expiry
    assert await _service(app).refresh_due() == 0  # an hour left: nothing due
    async with app.extensions[EXTENSION].db.session() as session:
        raw = " ".join(str(v) for v in (await session.execute(
            text("SELECT * FROM studio_connections"))).one())
    for token in [grant.refresh_token, *grant.access_tokens]:
        assert token not in raw  # sealed at rest

    # The user revokes the app at the provider: the periodic check finds out (the access
    # token is refused, and so is the refresh).
    assert await _service(app).check_all() == 0
    provider.revoke_all()
    assert await _service(app).check_all() == 1
    listed = await studio.call("GET", "/v1/connections", key=admin_key)
    bodies.append(listed.body)
    assert listed.json()["data"][0]["status"] == "needs_reauth"
    assert await _service(app).refresh_due() == 0  # not retried while it needs re-auth

    # Linking the same provider account again would renew it; unlink revokes and removes.
    deleted = await studio.call("DELETE", f"/v1/connections/{connection['id']}", key=admin_key)
    assert deleted.status == 200
    assert provider.revocations == ["refresh_token"]  # RFC 7009: revoking it ends the grant
    assert (await studio.call("GET", "/v1/connections", key=admin_key)).json()["data"] == []
    assert (await studio.call("DELETE", f"/v1/connections/{connection['id']}",
                              key=admin_key)).status == 404
    for body in bodies:
        for secret in [CLIENT_SECRET, grant.refresh_token, old_refresh, *grant.access_tokens]:
            assert secret.encode() not in body
    for secret in [CLIENT_SECRET, grant.refresh_token, old_refresh, *grant.access_tokens]:
        assert secret not in caplog.text


async def test_unlink_revokes_an_active_grant(app: Quart, studio: StudioClient,
                                              admin_key: str, provider: Provider) -> None:
    callback = await _link(studio, admin_key,
                           {"redirectTo": "https://app.invalid/done?x=1"})
    reply = await studio.call("GET", _local(callback))
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location.startswith("https://app.invalid/done?x=1&connectionId=con_")
    connection_id = parse_qs(urlsplit(location).query)["connectionId"][0]
    await studio.call("DELETE", f"/v1/connections/{connection_id}", key=admin_key)
    assert provider.revocations == ["refresh_token"]
    assert provider.grants[0].revoked


async def test_bad_callbacks_and_ownership(app: Quart, studio: StudioClient, admin_key: str,
                                           provider: Provider) -> None:
    callback = await _link(studio, admin_key)
    path, query = urlsplit(callback).path, parse_qs(urlsplit(callback).query)
    code, state = query["code"][0], query["state"][0]
    for bad in (f"code={code}", f"code={code}&state=forged", f"state={state}&error=access_denied",
                ""):
        reply = await studio.call("GET", f"{path}?{bad}")
        assert reply.status == 400, bad
        assert reply.json()["error"]["code"] == "invalid_request"
    # The refused attempt consumed the state; a fresh link with a wrong PKCE verifier fails.
    callback = await _link(studio, admin_key)
    provider.codes[parse_qs(urlsplit(callback).query)["code"][0]]["code_challenge"] = "x"
    assert (await studio.call("GET", _local(callback))).status == 400
    # Another platform's callback does not take this state.
    callback = await _link(studio, admin_key)
    assert (await studio.call("GET", _local(callback).replace("/testtv/", "/other/"))
            ).status == 400
    assert (await studio.call("POST", "/v1/connections/oauth/other/start",
                              key=admin_key)).status == 404
    reader = await make_key(app, "alice", ["connections:read"])
    reply = await studio.call("POST", "/v1/connections/oauth/testtv/start", key=reader)
    assert reply.status == 403 and reply.json()["error"]["requiredScope"] == "connections:write"
    assert (await studio.call("GET", "/v1/connections", key=admin_key)).json()["data"] == []
    # A link belongs to whoever started it.
    linked = await _link(studio, admin_key)
    assert (await studio.call("GET", _local(linked))).status == 200
    bob = await make_key(app, "bob", ["connections:read", "connections:write"])
    assert (await studio.call("GET", "/v1/connections", key=bob)).json()["data"] == []
    mine = (await studio.call("GET", "/v1/connections", key=admin_key)).json()["data"][0]
    assert (await studio.call("DELETE", f"/v1/connections/{mine['id']}", key=bob)).status == 404


async def test_manual_connections_and_expiry(app: Quart, studio: StudioClient, admin_key: str,
                                             provider: Provider) -> None:
    created = await studio.call("POST", "/v1/connections", key=admin_key, json_body={
        "connectionType": "manual", "platform": "custom", "displayName": "My RTMP",
        "rtmpUrl": "rtmp://127.0.0.1:1935/live", "streamKey": STREAM_KEY})
    assert created.status == 201
    body = created.json()
    assert STREAM_KEY.encode() not in created.body
    assert body["hasStreamKey"] is True and body["status"] == "active"
    assert body["connectionType"] == "manual"
    assert await _service(app).resolve_output("alice", body["id"]) == (
        "rtmp://127.0.0.1:1935/live", STREAM_KEY)
    for bad in ({"connectionType": "oauth", "platform": "x", "displayName": "x",
                 "rtmpUrl": "rtmp://h/a", "streamKey": "k"},
                {"connectionType": "manual", "platform": "x", "displayName": "x",
                 "rtmpUrl": "http://h/a", "streamKey": "k"},
                {"connectionType": "manual", "platform": "x", "displayName": "x",
                 "rtmpUrl": "rtmp://h/a"}):
        assert (await studio.call("POST", "/v1/connections", key=admin_key,
                                  json_body=bad)).status == 400, bad
    # A destination binds to it instead of a URL and key.
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    destination = await studio.call("POST", f"/v1/studios/{sid}/destinations", key=admin_key,
                                    json_body={"name": "d", "platform": "custom",
                                               "connectionId": body["id"]})
    assert destination.status == 201 and destination.json()["connectionId"] == body["id"]
    for unknown in ("con_" + "0" * 26, "nope"):
        reply = await studio.call("POST", f"/v1/studios/{sid}/destinations", key=admin_key,
                                  json_body={"name": "d", "platform": "custom",
                                             "connectionId": unknown})
        assert reply.status == 400, unknown
    bob = await make_key(app, "bob", ["studios:write", "destinations:write"])
    bob_sid = (await studio.call("POST", "/v1/studios", key=bob,
                                 json_body={"name": "b"})).json()["id"]
    reply = await studio.call("POST", f"/v1/studios/{bob_sid}/destinations", key=bob,
                              json_body={"name": "d", "platform": "custom",
                                         "connectionId": body["id"]})
    assert reply.status == 400  # alice's connection is not bob's to bind

    # An OAuth token that ran out with no refresh token shows as expired.
    linked = await _link(studio, admin_key)
    assert (await studio.call("GET", _local(linked))).status == 200
    async with app.extensions[EXTENSION].db.session() as session:
        await session.execute(update(StudioConnection)
                              .where(StudioConnection.connection_type == "oauth")
                              .values(refresh_token_sealed=None,
                                      expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    listed = (await studio.call("GET", "/v1/connections", key=admin_key)).json()["data"]
    assert {c["connectionType"]: c["status"] for c in listed} == {"manual": "active",
                                                                 "oauth": "expired"}
