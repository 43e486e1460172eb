"""Finding 11 of issue 13: webhook deliveries waiting for a retry lived only in process memory
and a restart lost them. They now live in the database (an outbox): a restarted server
resumes them with the same delivery id, and replicas claim each one once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from gateway.studio import apikeys, signing
from tests.security.studio_outbound import LOOPBACK_ALLOWED, probe, state_of, studio_app
from tests.studio.conftest import StudioClient, make_key
from tests.studio.live_helpers import Api, start_gateway
from tests.studio.receiver import receiver

SECRET = "outbox-test-secret-" + "7d" * 8


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_pending_retry_survives_a_restart(tmp_path: Path, database_url: str) -> None:
    env = {**LOOPBACK_ALLOWED, "MEDIAGATE_DATABASE_URL": database_url,
           "STUDIO_WEBHOOK_RETRIES": "3", "STUDIO_WEBHOOK_BACKOFF_INITIAL": "6",
           "STUDIO_WEBHOOK_BACKOFF_MAX": "6"}
    with receiver() as hook:
        hook.statuses.append(500)
        server = start_gateway(tmp_path / "data", **env)
        api = Api(server)
        try:
            api("POST", "/v1/webhooks", {"url": hook.url, "events": ["chat.message"],
                                         "secret": SECRET}, expect=201)
            sid = api("POST", "/v1/studios", {"name": "s"}, expect=201).json()["id"]
            sent = api("POST", f"/v1/studios/{sid}/chat/messages", {"text": "durable"},
                       expect=201).json()
            _wait(lambda: len(hook.requests) == 1, 20, "the first (failing) attempt")
        finally:
            api.close()
            assert server.stop() == 0, server.log()[-5000:]
        assert len(hook.requests) == 1, "the retry came before the restart"

        restarted = start_gateway(tmp_path / "data", **env)
        api = Api(restarted)
        try:
            _wait(lambda: len(hook.requests) == 2, 40, "the retry after the restart")
            first, retry = hook.requests
            assert retry.headers["x-mediagate-delivery"] == first.headers["x-mediagate-delivery"]
            assert json.loads(retry.body)["id"] == json.loads(first.body)["id"] \
                == first.headers["x-mediagate-delivery"]
            assert json.loads(retry.body)["data"]["id"] == sent["messageId"]
            assert signing.verify(SECRET, retry.body, retry.headers["x-mediagate-signature"])
            _wait(lambda: api("GET", "/v1/webhooks", expect=200).json()["data"][0]
                  .get("lastStatus") == "delivered", 10, "the webhook's status")
            time.sleep(1)
            assert len(hook.requests) == 2
        finally:
            api.close()
            assert restarted.stop() == 0, restarted.log()[-5000:]


async def test_replicas_deliver_each_event_once(tmp_path: Path, database_url: str) -> None:
    env = {**LOOPBACK_ALLOWED, "STUDIO_WEBHOOK_RETRIES": "5",
           "STUDIO_WEBHOOK_BACKOFF_INITIAL": "0.05", "STUDIO_WEBHOOK_BACKOFF_MAX": "0.1"}
    async with probe("receiver", status=200) as hook:
        hook.statuses += [500] * 5  # some attempts fail and are retried by either replica
        async with studio_app(tmp_path / "data", database_url, **env) as first, \
                studio_app(tmp_path / "data", database_url, **env) as second:
            key = await make_key(first, "alice", apikeys.ALL_SCOPES)
            reply = await StudioClient(first).call("POST", "/v1/webhooks", key=key, json_body={
                "url": hook.url, "events": ["stream.live"], "secret": SECRET})
            assert reply.status == 201, reply.body
            services = [state_of(app).services["studio.webhooks"] for app in (first, second)]
            await asyncio.gather(*(services[i % 2].emit("alice", "stream.live", {"n": i})
                                   for i in range(20)))
            await asyncio.gather(*(service.wait_idle() for service in services))
    # Each event is taken (answered 200) exactly once, whichever replica claimed it.
    assert len(hook.requests) == 25
    taken = Counter(r.headers["x-mediagate-delivery"] for r in hook.requests
                    if r.answered == 200)
    assert len(taken) == 20 and set(taken.values()) == {1}


async def test_concurrent_claims_never_overlap(tmp_path: Path, database_url: str) -> None:
    env = {**LOOPBACK_ALLOWED, "STUDIO_WEBHOOK_BACKOFF_INITIAL": "0.05"}
    async with studio_app(tmp_path / "data", database_url, **env) as first, \
            studio_app(tmp_path / "data", database_url, **env) as second:
        key = await make_key(first, "alice", apikeys.ALL_SCOPES)
        for _ in range(2):
            reply = await StudioClient(first).call("POST", "/v1/webhooks", key=key, json_body={
                "url": "http://127.0.0.1:9/h", "events": ["stream.live"], "secret": SECRET})
            assert reply.status == 201, reply.body
        outboxes = [state_of(app).services["studio.webhooks"].outbox for app in (first, second)]
        for outbox in outboxes:
            await outbox.stop()  # no workers: the test claims by hand
        for i in range(30):
            await state_of(first).services["studio.webhooks"].emit("alice", "stream.live",
                                                                   {"n": i})
        claimed: list[list[str]] = [[], []]
        for _ in range(10):
            rounds = await asyncio.gather(*(outbox.claim(7) for outbox in outboxes * 2))
            for i, ids in enumerate(rounds):
                claimed[i % 2] += ids
    ids = claimed[0] + claimed[1]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert claimed[0] and claimed[1]
