"""Finding 2 of issue 13 for Studio: webhook URLs and the chat `webhook` platform's URL made the
server connect to internal addresses, and the chat send reply told a port scanner what
answered. Now: refused at create/update time unless MEDIAGATE_EGRESS_ALLOW opens the range,
delivered only through the egress guard, and every failure reads "delivery failed"."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from quart import Quart
from sqlalchemy import select

from gateway.egress import DELIVERY_FAILED
from gateway.studio import apikeys
from gateway.studio.models_part2 import StudioChatMessage, StudioChatPlatform, StudioWebhook
from gateway.studio.sealbox import SealBox
from tests.security.studio_outbound import (
    LOOPBACK_ALLOWED,
    Probe,
    closed_port,
    probe,
    state_of,
    studio_app,
)
from tests.studio.conftest import StudioClient, make_key

SECRET = "egress-test-secret-" + "5a" * 8

# Every spelling of "this machine" or "the cloud's metadata service" a client tried; {port} is a
# live recorder on 127.0.0.1 that must never see a connection.
VECTORS = [
    "http://127.0.0.1:{port}/hook",
    "http://127.1:{port}/hook",
    "http://0x7f000001:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://0177.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://192.168.0.1/",
]


async def _setup(app: Quart) -> tuple[StudioClient, str, str]:
    client = StudioClient(app)
    key = await make_key(app, "alice", apikeys.ALL_SCOPES)
    sid = (await client.call("POST", "/v1/studios", key=key,
                             json_body={"name": "s"})).json()["id"]
    return client, key, sid


def _refused(reply_status: int, body: dict[str, object]) -> bool:
    error = body.get("error")
    return (reply_status == 400 and isinstance(error, dict)
            and error.get("code") == "invalid_request"
            and "MEDIAGATE_EGRESS_ALLOW" in str(error.get("message")))


def _configure(target: str, sid: str, url: str) -> tuple[str, str, dict[str, object]]:
    if target == "webhook":
        return "POST", "/v1/webhooks", {"url": url, "events": ["chat.message"],
                                        "secret": SECRET}
    return "PUT", f"/v1/studios/{sid}/chat/platforms/webhook", {"url": url, "secret": SECRET,
                                                                  "enabled": True}


@pytest.mark.parametrize("target", ["webhook", "chat platform"])
async def test_urls_to_internal_addresses_are_refused(tmp_path: Path, target: str) -> None:
    async with studio_app(tmp_path / "data") as app, probe("recorder", status=200) as seen:
        client, key, sid = await _setup(app)
        accepted = []
        for vector in VECTORS:
            method, path, body = _configure(target, sid, vector.format(port=seen.port))
            reply = await client.call(method, path, key=key, json_body=body)
            if not _refused(reply.status, reply.json()):
                accepted.append((body["url"], reply.status))
        await client.call("POST", f"/v1/studios/{sid}/chat/messages", key=key,
                          json_body={"text": "hello"})
        await state_of(app).services["studio.webhooks"].wait_idle()
    assert accepted == []
    assert seen.connections == 0


async def _store_unchecked(app: Quart, sid: str, url: str) -> None:
    """URLs stored before the guard existed (or by an operator): delivery is still guarded."""
    db = state_of(app).db
    secret = state_of(app).secret
    now = datetime.now(UTC)
    async with db.session() as session:
        webhook_id = "whk_" + "0" * 25 + "1"
        session.add(StudioWebhook(
            id=webhook_id, owner="alice", url=url, events="chat.message",
            secret_sealed=SealBox(secret, "studio-webhook-secret").seal(webhook_id, SECRET),
            enabled=True, created_at=now, failures=0))
        platform_id = "cpl_" + "0" * 25 + "1"
        session.add(StudioChatPlatform(
            id=platform_id, studio_id=sid, platform="webhook", enabled=True, url=url,
            secret_sealed=SealBox(secret, "studio-chat-platform-secret").seal(platform_id,
                                                                              SECRET),
            created_at=now, updated_at=now))


@pytest.mark.parametrize("vector", [v for v in VECTORS if "{port}" in v])
async def test_stored_internal_urls_are_never_connected_to(tmp_path: Path, vector: str) -> None:
    env = {"STUDIO_WEBHOOK_RETRIES": "1", "STUDIO_WEBHOOK_BACKOFF_INITIAL": "0.05"}
    async with studio_app(tmp_path / "data", **env) as app, \
            probe("recorder", status=200) as seen:
        client, key, sid = await _setup(app)
        await _store_unchecked(app, sid, vector.format(port=seen.port))
        sent = await client.call("POST", f"/v1/studios/{sid}/chat/messages", key=key,
                                 json_body={"text": "hello"})
        await state_of(app).services["studio.webhooks"].wait_idle()
        hooks = (await client.call("GET", "/v1/webhooks", key=key)).json()["data"]
    assert seen.connections == 0
    assert {d["platform"]: d for d in sent.json()["deliveries"]}["webhook"] == {
        "platform": "webhook", "ok": False, "error": DELIVERY_FAILED}
    assert hooks[0]["lastStatus"] == DELIVERY_FAILED and hooks[0]["failures"] == 1


async def test_failures_all_read_the_same(tmp_path: Path) -> None:
    """With loopback opened, a closed port, a silent listener, a reset, an HTTP 500 and a
    redirect (never followed) are indistinguishable in replies, stored records and webhooks."""
    env = {**LOOPBACK_ALLOWED, "STUDIO_WEBHOOK_RETRIES": "0"}
    async with studio_app(tmp_path / "data", **env) as app, \
            probe("redirect-target", status=200) as target, \
            probe("silent") as silent, probe("reset", reset=True) as reset, \
            probe("http-500", status=500) as failing, \
            probe("redirect", status=302, location=target.url) as redirect:
        client, key, _ = await _setup(app)
        probes: list[Probe] = [closed_port(), silent, reset, failing, redirect]
        sids = []
        for target_probe in probes:
            sid = (await client.call("POST", "/v1/studios", key=key,
                                     json_body={"name": target_probe.name})).json()["id"]
            reply = await client.call("PUT", f"/v1/studios/{sid}/chat/platforms/webhook",
                                      key=key, json_body={"url": target_probe.url,
                                                          "secret": SECRET, "enabled": True})
            assert reply.status == 200, reply.body
            hook = await client.call("POST", "/v1/webhooks", key=key, json_body={
                "url": target_probe.url, "events": ["stream.offline"], "secret": SECRET})
            assert hook.status == 201, hook.body
            sids.append(sid)
        replies = await asyncio.gather(*(
            client.call("POST", f"/v1/studios/{sid}/chat/messages", key=key,
                        json_body={"text": "probe"}) for sid in sids))
        await state_of(app).services["studio.webhooks"].emit("alice", "stream.offline", {})
        await state_of(app).services["studio.webhooks"].wait_idle()
        hooks = (await client.call("GET", "/v1/webhooks", key=key)).json()["data"]
        async with state_of(app).db.session() as session:
            stored = [m.deliveries for m in (await session.execute(
                select(StudioChatMessage))).scalars()]
    outcomes = [{d["platform"]: d for d in r.json()["deliveries"]}["webhook"] for r in replies]
    assert outcomes == [{"platform": "webhook", "ok": False, "error": DELIVERY_FAILED}] * 5
    for deliveries in stored:
        assert {d["platform"]: d for d in json.loads(deliveries or "[]")}["webhook"] == \
            outcomes[0]
    assert [(h["lastStatus"], h["failures"]) for h in hooks] == [(DELIVERY_FAILED, 1)] * 5
    assert silent.connections >= 1 and reset.connections >= 1 and failing.connections >= 1
    assert target.connections == 0  # the redirect was not followed
