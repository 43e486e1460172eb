"""Unified chat: fan-out through the adapters, inbound messages, the store, no leaked secrets."""

from __future__ import annotations

import json
import logging
import time

import pytest
from quart import Quart

from gateway.state import EXTENSION
from gateway.studio import signing
from tests.studio.conftest import StudioClient, make_key
from tests.studio.receiver import receiver

SECRET = "chat-webhook-secret-" + "9f" * 8


@pytest.fixture
def studio_env() -> dict[str, str]:
    # The fake platform listens on 127.0.0.1, which the egress guard refuses by default.
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}


async def _studio_id(studio: StudioClient, key: str) -> str:
    reply = await studio.call("POST", "/v1/studios", key=key, json_body={"name": "show"})
    return str(reply.json()["id"])


async def _enable_webhook(studio: StudioClient, key: str, sid: str, url: str) -> None:
    reply = await studio.call("PUT", f"/v1/studios/{sid}/chat/platforms/webhook", key=key,
                              json_body={"url": url, "secret": SECRET, "enabled": True})
    assert reply.status == 200, reply.body
    assert reply.json() == {"platform": "webhook", "enabled": True, "url": url,
                            "hasSecret": True}


async def test_fan_out_reaches_the_webhook_platform_signed(app: Quart, studio: StudioClient,
                                                           admin_key: str,
                                                           caplog: pytest.LogCaptureFixture,
                                                           ) -> None:
    caplog.set_level(logging.DEBUG)
    sid = await _studio_id(studio, admin_key)
    bodies: list[bytes] = []
    with receiver() as hook:
        # Not configured yet: only the built-in chat is enabled.
        platforms = (await studio.call("GET", f"/v1/studios/{sid}/chat/platforms",
                                       key=admin_key)).json()["data"]
        assert {p["platform"]: p["enabled"] for p in platforms} == {"mediagate": True,
                                                                    "webhook": False}
        assert "/chat/page?token=cvt_" in platforms[0]["pageUrl"]
        reply = await studio.call("PUT", f"/v1/studios/{sid}/chat/platforms/webhook",
                                  key=admin_key, json_body={"enabled": True})
        assert reply.status == 400  # a webhook platform needs a url and secret first
        await _enable_webhook(studio, admin_key, sid, hook.url)

        sent = await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                                 json_body={"text": "hello everyone"})
        assert sent.status == 201
        result = sent.json()
        bodies.append(sent.body)
        assert result["ok"] is True and result["messageId"].startswith("msg_")
        assert sorted((d["platform"], d["ok"]) for d in result["deliveries"]) == [
            ("mediagate", True), ("webhook", True)]
        assert len(hook.requests) == 1
        delivered = hook.requests[0]
        assert signing.verify(SECRET, delivered.body, delivered.headers["x-mediagate-signature"])
        assert not signing.verify("another-secret-value", delivered.body,
                                  delivered.headers["x-mediagate-signature"])
        payload = json.loads(delivered.body)
        assert payload["type"] == "chat.message"
        assert payload["data"]["text"] == "hello everyone"
        assert payload["data"]["id"] == result["messageId"]

        # Only the requested subset; unknown or disabled platforms are refused.
        only = await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                                 json_body={"text": "just here", "platforms": ["mediagate"]})
        assert [d["platform"] for d in only.json()["deliveries"]] == ["mediagate"]
        assert len(hook.requests) == 1
        for bad in ({"text": "x", "platforms": ["twitch"]}, {"text": ""}, {"text": 5},
                    {"platforms": ["mediagate"]}, {"text": "x" * 2001}):
            reply = await studio.call("POST", f"/v1/studios/{sid}/chat/messages",
                                      key=admin_key, json_body=bad)
            assert reply.status == 400, bad

        # A platform that refuses: reported per platform, the message is still stored.
        hook.statuses.append(500)
        failed = (await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                                    json_body={"text": "third"})).json()
        outcome = {d["platform"]: d for d in failed["deliveries"]}
        assert outcome["webhook"] == {"platform": "webhook", "ok": False,
                                      "error": "delivery failed"}

    listed = await studio.call("GET", f"/v1/studios/{sid}/chat/messages", key=admin_key)
    bodies.append(listed.body)
    texts = [m["text"] for m in listed.json()["data"]]
    assert texts == ["hello everyone", "just here", "third"]
    assert "nextCursor" not in listed.json()
    last_two = (await studio.call("GET", f"/v1/studios/{sid}/chat/messages?limit=2",
                                  key=admin_key)).json()["data"]
    assert [m["text"] for m in last_two] == ["just here", "third"]
    assert all(m["platform"] == "mediagate" and m["direction"] == "out" for m in last_two)
    for bad in ("limit=0", "limit=x"):
        assert (await studio.call("GET", f"/v1/studios/{sid}/chat/messages?{bad}",
                                  key=admin_key)).status == 400
    bodies.append((await studio.call("GET", f"/v1/studios/{sid}/chat/platforms",
                                     key=admin_key)).body)
    for body in bodies:
        assert SECRET.encode() not in body
    assert SECRET not in caplog.text


async def test_inbound_messages_land_in_the_store(app: Quart, studio: StudioClient,
                                                  admin_key: str) -> None:
    sid = await _studio_id(studio, admin_key)
    path = f"/v1/studios/{sid}/chat/inbound/webhook"
    body = json.dumps({"authorDisplayName": "Viewer 7", "authorId": "u7",
                       "text": "hi from outside"}).encode()
    signed = {"Content-Type": "application/json",
              signing.HEADER: signing.signature_header(SECRET, body)}
    # Not enabled yet.
    assert (await studio.call("POST", path, data=body, headers=signed)).status == 404
    with receiver() as hook:
        await _enable_webhook(studio, admin_key, sid, hook.url)
    reply = await studio.call("POST", path, data=body, headers=signed)
    assert reply.status == 201, reply.body
    for headers in ({"Content-Type": "application/json"},
                    {signing.HEADER: signing.signature_header("wrong-secret-0123456789", body)},
                    {signing.HEADER: signing.signature_header(SECRET, body,
                                                              int(time.time()) - 3600)},
                    {signing.HEADER: signing.signature_header(SECRET, body + b" ")}):
        reply = await studio.call("POST", path, data=body, headers=headers)
        assert reply.status == 401, headers
        assert reply.json()["error"]["code"] == "invalid_key"
    bad = b'{"text": "no author"}'
    reply = await studio.call("POST", path, data=bad,
                              headers={signing.HEADER: signing.signature_header(SECRET, bad)})
    assert reply.status == 400
    assert (await studio.call("POST", f"/v1/studios/{sid}/chat/inbound/mediagate", data=body,
                              headers=signed)).status == 404
    listed = (await studio.call("GET", f"/v1/studios/{sid}/chat/messages",
                                key=admin_key)).json()["data"]
    assert len(listed) == 1
    assert {k: listed[0][k] for k in ("platform", "direction", "authorDisplayName", "authorId",
                                      "text")} == {
        "platform": "webhook", "direction": "in", "authorDisplayName": "Viewer 7",
        "authorId": "u7", "text": "hi from outside"}


async def test_viewer_page_routes_need_the_viewer_token(app: Quart, studio: StudioClient,
                                                        admin_key: str) -> None:
    sid = await _studio_id(studio, admin_key)
    token = app.extensions[EXTENSION].services["studio.chat"].viewer_token(sid)
    page = await studio.call("GET", f"/v1/studios/{sid}/chat/page?token={token}")
    assert page.status == 200 and b"<title>Chat: show</title>" in page.body
    for bad in ("", "?token=cvt_0000", f"?token={token}x", "?token=%C3%A9t%C3%A9"):
        assert (await studio.call("GET", f"/v1/studios/{sid}/chat/page{bad}")).status == 401
    other = await _studio_id(studio, admin_key)
    assert (await studio.call("GET", f"/v1/studios/{other}/chat/page?token={token}")
            ).status == 401
    posted = await studio.call("POST", f"/v1/studios/{sid}/chat/viewer-messages?token={token}",
                               json_body={"authorDisplayName": "Ann", "text": "<b>hi</b>"})
    assert posted.status == 201
    assert (await studio.call("POST", f"/v1/studios/{sid}/chat/viewer-messages",
                              json_body={"authorDisplayName": "Ann", "text": "x"})).status == 401
    listed = (await studio.call("GET", f"/v1/studios/{sid}/chat/messages",
                                key=admin_key)).json()["data"]
    assert [(m["platform"], m["direction"], m["text"]) for m in listed] == [
        ("mediagate", "in", "<b>hi</b>")]
    assert posted.json()["messageId"] == listed[0]["id"]
    # Writers without a key are limited per address.
    statuses = [(await studio.call("POST",
                                   f"/v1/studios/{sid}/chat/viewer-messages?token={token}",
                                   json_body={"authorDisplayName": "Spam", "text": "x"})).status
                for _ in range(15)]
    assert statuses.count(201) <= 10 and statuses[-1] == 429
    # Turning the built-in chat off closes its page.
    reply = await studio.call("PUT", f"/v1/studios/{sid}/chat/platforms/mediagate",
                              key=admin_key, json_body={"enabled": False})
    assert reply.status == 200 and reply.json()["enabled"] is False
    assert (await studio.call("GET", f"/v1/studios/{sid}/chat/page?token={token}")
            ).status == 404
    reply = await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                              json_body={"text": "x", "platforms": ["mediagate"]})
    assert reply.status == 400


async def test_chat_scopes_and_ownership(app: Quart, studio: StudioClient,
                                         admin_key: str) -> None:
    sid = await _studio_id(studio, admin_key)
    reader = await make_key(app, "alice", ["chat:read"])
    sender = await make_key(app, "alice", ["chat:send"])
    bob = await make_key(app, "bob", ["chat:read", "chat:send", "studios:write"])
    path = f"/v1/studios/{sid}/chat/messages"
    reply = await studio.call("POST", path, key=reader, json_body={"text": "x"})
    assert reply.status == 403 and reply.json()["error"]["requiredScope"] == "chat:send"
    reply = await studio.call("GET", path, key=sender)
    assert reply.status == 403 and reply.json()["error"]["requiredScope"] == "chat:read"
    assert (await studio.call("POST", path, key=sender, json_body={"text": "x"})).status == 201
    assert (await studio.call("GET", path, key=reader)).status == 200
    for method, body in (("GET", None), ("POST", {"text": "x"})):
        assert (await studio.call(method, path, key=bob, json_body=body)).status == 404
    assert (await studio.call("PUT", f"/v1/studios/{sid}/chat/platforms/mediagate", key=bob,
                              json_body={"enabled": False})).status == 404
    assert (await studio.call("PUT", f"/v1/studios/{sid}/chat/platforms/irc", key=admin_key,
                              json_body={"enabled": True})).status == 404
    assert (await studio.call("GET", "/v1/studios/std_nope/chat/messages",
                              key=admin_key)).status == 404
