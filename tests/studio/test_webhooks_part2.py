"""Event webhooks: `webhooks:manage` subscriptions, signed deliveries, retries with backoff."""

from __future__ import annotations

import json

import pytest
from quart import Quart

from gateway.state import EXTENSION
from gateway.studio import signing
from gateway.studio.webhooks import WebhookService
from tests.studio.conftest import StudioClient, make_key
from tests.studio.receiver import receiver

SECRET = "event-webhook-secret-" + "4e" * 8


@pytest.fixture
def studio_env() -> dict[str, str]:
    # The receivers are on 127.0.0.1, which the egress guard refuses unless told otherwise.
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8",
            "STUDIO_WEBHOOK_RETRIES": "3",
            "STUDIO_WEBHOOK_BACKOFF_INITIAL": "0.05", "STUDIO_WEBHOOK_BACKOFF_MAX": "0.2"}


def _service(app: Quart) -> WebhookService:
    return app.extensions[EXTENSION].services["studio.webhooks"]


async def test_chat_message_event_is_signed_and_retried(app: Quart, studio: StudioClient,
                                                        admin_key: str) -> None:
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    with receiver() as hook:
        created = await studio.call("POST", "/v1/webhooks", key=admin_key, json_body={
            "url": hook.url, "events": ["chat.message", "stream.live"], "secret": SECRET})
        assert created.status == 201, created.body
        webhook = created.json()
        assert webhook["events"] == ["stream.live", "chat.message"]
        assert webhook["hasSecret"] is True and SECRET.encode() not in created.body
        hook.statuses += [500, 503]  # two failures, then the third attempt is taken
        sent = (await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                                  json_body={"text": "ping"})).json()
        await _service(app).wait_idle()
        assert len(hook.requests) == 3
        deliveries = {r.headers["x-mediagate-delivery"] for r in hook.requests}
        assert len(deliveries) == 1  # the same event id on every retry
        for request in hook.requests:
            assert request.headers["x-mediagate-event"] == "chat.message"
            assert signing.verify(SECRET, request.body, request.headers["x-mediagate-signature"])
        event = json.loads(hook.requests[-1].body)
        assert event["type"] == "chat.message" and event["id"] == deliveries.pop()
        assert event["data"]["id"] == sent["messageId"] and event["data"]["text"] == "ping"
        listed = (await studio.call("GET", "/v1/webhooks", key=admin_key)).json()["data"]
        assert listed[0]["lastStatus"] == "delivered" and listed[0]["failures"] == 0
        assert SECRET not in json.dumps(listed)

        # Every attempt fails: given up after 1 + 3 tries, recorded on the webhook.
        hook.requests.clear()
        hook.statuses += [500] * 4
        await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                          json_body={"text": "lost"})
        await _service(app).wait_idle()
        assert len(hook.requests) == 4
        listed = (await studio.call("GET", "/v1/webhooks", key=admin_key)).json()["data"]
        assert listed[0]["lastStatus"] == "delivery failed" and listed[0]["failures"] == 1

        # Events the webhook did not subscribe to are not sent.
        hook.requests.clear()
        await _service(app).emit("alice", "stream.offline", {"studioId": sid})
        await _service(app).emit("alice", "stream.live", {"studioId": sid})
        await _service(app).wait_idle()
        assert [r.headers["x-mediagate-event"] for r in hook.requests] == ["stream.live"]

        deleted = await studio.call("DELETE", f"/v1/webhooks/{webhook['id']}", key=admin_key)
        assert deleted.status == 200
        assert (await studio.call("DELETE", f"/v1/webhooks/{webhook['id']}",
                                  key=admin_key)).status == 404
        hook.requests.clear()
        await studio.call("POST", f"/v1/studios/{sid}/chat/messages", key=admin_key,
                          json_body={"text": "nobody listens"})
        await _service(app).wait_idle()
        assert hook.requests == []


async def test_webhook_validation_scope_and_ownership(app: Quart, studio: StudioClient,
                                                      admin_key: str) -> None:
    for bad in ({"url": "ftp://x", "events": ["chat.message"], "secret": SECRET},
                {"url": "http://127.0.0.1:9/h", "events": ["nope"], "secret": SECRET},
                {"url": "http://127.0.0.1:9/h", "events": [], "secret": SECRET},
                {"url": "http://127.0.0.1:9/h", "events": ["chat.message"], "secret": "short"},
                {"url": "http://127.0.0.1:9/h", "events": ["chat.message"]}):
        reply = await studio.call("POST", "/v1/webhooks", key=admin_key, json_body=bad)
        assert reply.status == 400, bad
    created = (await studio.call("POST", "/v1/webhooks", key=admin_key, json_body={
        "url": "http://127.0.0.1:9/h", "events": ["stream.offline"], "secret": SECRET})).json()
    chat_only = await make_key(app, "alice", ["chat:read", "chat:send"])
    reply = await studio.call("GET", "/v1/webhooks", key=chat_only)
    assert reply.status == 403 and reply.json()["error"]["requiredScope"] == "webhooks:manage"
    bob = await make_key(app, "bob", ["webhooks:manage"])
    assert (await studio.call("GET", "/v1/webhooks", key=bob)).json()["data"] == []
    assert (await studio.call("DELETE", f"/v1/webhooks/{created['id']}", key=bob)
            ).status == 404
    assert (await studio.call("DELETE", "/v1/webhooks/whk_x", key=admin_key)).status == 404
