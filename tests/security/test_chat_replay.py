"""Finding 10 of issue 13: a signed inbound chat webhook could be replayed within its 300 s
window and was stored once per replay. Accepted signatures are now remembered in the
database (every replica sees them), a replay gets the bad-signature error, old ones expire."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quart import Quart
from sqlalchemy import func, select

from gateway.studio import apikeys, signing
from gateway.studio.models_part2 import StudioChatMessage
from tests.security.studio_outbound import LOOPBACK_ALLOWED, state_of, studio_app
from tests.studio.conftest import StudioClient, make_key

SECRET = "replay-test-secret-" + "3c" * 8


async def _stored(app: Quart) -> int:
    async with state_of(app).db.session() as session:
        return int((await session.execute(
            select(func.count()).select_from(StudioChatMessage))).scalar_one())


def _body(text: str) -> bytes:
    return json.dumps({"authorDisplayName": "bridge", "text": text}).encode()


async def test_a_replayed_inbound_message_is_refused_on_every_replica(
        tmp_path: Path, database_url: str) -> None:
    async with studio_app(tmp_path / "data", database_url, **LOOPBACK_ALLOWED) as first, \
            studio_app(tmp_path / "data", database_url, **LOOPBACK_ALLOWED) as second:
        a, b = StudioClient(first), StudioClient(second)
        key = await make_key(first, "alice", apikeys.ALL_SCOPES)
        sid = (await a.call("POST", "/v1/studios", key=key,
                            json_body={"name": "s"})).json()["id"]
        reply = await a.call("PUT", f"/v1/studios/{sid}/chat/platforms/webhook", key=key,
                             json_body={"url": "http://127.0.0.1:9/x", "secret": SECRET,
                                        "enabled": True})
        assert reply.status == 200, reply.body
        path = f"/v1/studios/{sid}/chat/inbound/webhook"

        body = _body("once")
        header = signing.signature_header(SECRET, body)
        assert (await a.call("POST", path, data=body,
                             headers={signing.HEADER: header})).status == 201
        forged = await a.call("POST", path, data=body, headers={
            signing.HEADER: signing.signature_header("not-the-secret-at-all", body)})
        assert forged.status == 401
        t, v1 = header.split(",")
        for client, variant in ((a, header), (b, header), (a, f"{v1},{t}"),
                                (b, f"{header},v1={'0' * 64}"), (b, f" {t} , {v1} ")):
            replay = await client.call("POST", path, data=body,
                                       headers={signing.HEADER: variant})
            assert replay.status == 401, variant
            assert replay.json()["error"]["code"] == forged.json()["error"]["code"]
            assert replay.json()["error"]["message"] == forged.json()["error"]["message"]
        assert await _stored(first) == 1

        # A burst of the same signed request at both replicas: exactly one is stored.
        body = _body("raced")
        header = signing.signature_header(SECRET, body)
        replies = await asyncio.gather(*(
            client.call("POST", path, data=body, headers={signing.HEADER: header})
            for client in (a, b) * 4))
        assert sorted(r.status for r in replies) == [201] + [401] * 7
        assert await _stored(first) == 2

        # The same text sent again later is a new request (new timestamp), not a replay.
        body = _body("once")
        later = signing.signature_header(SECRET, body, int(time.time()) + 1)
        assert (await b.call("POST", path, data=body,
                             headers={signing.HEADER: later})).status == 201


async def test_remembered_signatures_expire(tmp_path: Path, database_url: str) -> None:
    from gateway.studio.models_part2 import StudioInboundSignature

    async with studio_app(tmp_path / "data", database_url, **LOOPBACK_ALLOWED) as app:
        client = StudioClient(app)
        key = await make_key(app, "alice", apikeys.ALL_SCOPES)
        sid = (await client.call("POST", "/v1/studios", key=key,
                                 json_body={"name": "s"})).json()["id"]
        await client.call("PUT", f"/v1/studios/{sid}/chat/platforms/webhook", key=key,
                          json_body={"url": "http://127.0.0.1:9/x", "secret": SECRET,
                                     "enabled": True})
        db = state_of(app).db
        async with db.session() as session:
            session.add(StudioInboundSignature(
                digest="f" * 64, expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        body = _body("hi")
        reply = await client.call("POST", f"/v1/studios/{sid}/chat/inbound/webhook", data=body,
                                  headers={signing.HEADER: signing.signature_header(SECRET,
                                                                                    body)})
        assert reply.status == 201
        async with db.session() as session:
            rows = list((await session.execute(select(StudioInboundSignature))).scalars())
        assert [r.digest for r in rows] != ["f" * 64] and len(rows) == 1
        expires = rows[0].expires_at if rows[0].expires_at.tzinfo else \
            rows[0].expires_at.replace(tzinfo=UTC)
        window = expires - datetime.now(UTC)
        assert timedelta(seconds=signing.TOLERANCE_SECONDS) < window \
            <= timedelta(seconds=3 * signing.TOLERANCE_SECONDS)
