"""The brokerage's storage and state machine on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.brokerage.errors import PunchError
from gateway.brokerage.relay import RelayManager
from gateway.brokerage.service import BrokerageService, Config, CreateSession
from gateway.brokerage.signalling import SignalConnection, Signalling
from gateway.brokerage.tokens import TokenSigner
from gateway.db import Database
from gateway.migrate import upgrade
from tests.brokerage.helpers import check_server_message


def drain(connection: SignalConnection) -> list[dict[str, Any]]:
    messages = []
    while not connection.outbox.empty():
        message = connection.outbox.get_nowait()
        check_server_message(message)
        messages.append(message)
    return messages


def _config() -> Config:
    return Config(max_streams=16, default_ttl=1800, turnstile_secret=None,
                  turnstile_verify_url="http://127.0.0.1:9/", public_url=None)


async def test_state_machine_on_both_databases(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    service = BrokerageService(db, TokenSigner(b"k" * 32), _config(),
                               relays=RelayManager(binary="false"))
    signalling = Signalling(service)
    try:
        created = await service.create_session(
            CreateSession(name="store", streams=["cam"], latency=200, ttl=120), "127.0.0.1")
        with pytest.raises(PunchError) as taken:
            await service.create_session(
                CreateSession(name="store", streams=[], latency=200, ttl=120), "127.0.0.1")
        assert taken.value.code == "SESSION_EXISTS"
        admin = service.verify(created.token)
        peer = service.verify(service.mint(created.session, "cam"))
        observer = await signalling.open("store", admin, "10.0.0.9", "127.0.0.1")
        a = await signalling.open("store", peer, "198.51.100.1", "127.0.0.1")
        b = await signalling.open("store", peer, "203.0.113.7", "127.0.0.1")
        c = await signalling.open("store", peer, "203.0.113.8", "127.0.0.1")
        await signalling.handle_text(a, '{"type": "register", "port": 4000}')
        await signalling.handle_text(b, '{"type": "register", "port": 4002}')
        await signalling.handle_text(c, '{"type": "register", "port": 4004}')
        assert next(m for m in drain(c) if m["type"] == "error")["error"] == "STREAM_TAKEN"
        peer_a = next(m for m in drain(a) if m["type"] == "peer")
        assert (peer_a["host"], peer_a["port"]) == ("203.0.113.7", 4002)
        assert [m["type"] for m in drain(observer)] == ["state", "peer_match", "state"]
        # an admin registering without a stream takes a free side, if any is left
        await signalling.handle_text(observer, '{"type": "register", "port": 4006}')
        assert next(m for m in drain(observer) if m["type"] == "error")["error"] == (
            "SESSION_FULL")
        body = await service.describe("store", admin)
        assert body["state"] == "READY" and body["streams"]["cam"]["peers"] == 2

        # both fail to punch: the relay (here a binary that exits at once) fails,
        # and a failed relay closes the session
        await signalling.handle_text(a, '{"type": "status", "srt": "error"}')
        await signalling.handle_text(b, '{"type": "status", "srt": "error"}')
        relay = [m for m in drain(b) if m["type"] == "relay"]
        assert relay and relay[0]["role"] == "receiver"
        for _ in range(100):
            if "CLOSED" in [m.get("state") for m in drain(observer)]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("a failed relay did not close the session")
        with pytest.raises(PunchError) as gone:
            await service.describe("store", admin)
        assert gone.value.code == "SESSION_EXPIRED"
        for connection in (observer, a, b, c):
            await signalling.close(connection)

        # expiry and the sweeper
        await service.create_session(
            CreateSession(name="ttl", streams=[], latency=200, ttl=60), "127.0.0.1")
        now = time.time()
        service.clock = lambda: now + 61
        assert await service.sweep() == 1
        service.clock = lambda: now + 1000
        await service.sweep()
        async with db.session() as session:
            from sqlalchemy import func, select

            from gateway.brokerage.models import PunchSession, PunchStream

            assert await session.scalar(select(func.count()).select_from(PunchSession)) == 0
            assert await session.scalar(select(func.count()).select_from(PunchStream)) == 0
    finally:
        await service.stop()
        await db.close()


@asynccontextmanager
async def relaying_service(tmp_path: Path) -> AsyncIterator[tuple[BrokerageService, Signalling]]:
    """A service on SQLite with the real relay binary, stopped (relays too) on exit."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    service = BrokerageService(db, TokenSigner(b"k" * 32), _config())
    try:
        yield service, Signalling(service)
    finally:
        await service.stop()
        await db.close()


async def test_relay_request_and_shutdown(tmp_path: Path) -> None:
    async with relaying_service(tmp_path) as (service, signalling):
        created = await service.create_session(
            CreateSession(name="ask", streams=[], latency=300, ttl=600), "127.0.0.1")
        peer = service.verify(service.mint(created.session, "default"))
        a = await signalling.open("ask", peer, "127.0.0.1", "127.0.0.1")
        await signalling.handle_text(a, '{"type": "relay"}')
        assert drain(a)[-1]["error"] == "INVALID_MESSAGE"  # not registered yet
        await signalling.handle_text(a, '{"type": "register", "port": 4100}')
        await signalling.handle_text(a, '{"type": "relay"}')
        assert drain(a)[-1] == {"type": "error", "error": "INVALID_MESSAGE",
                                "message": "the stream has no matched peers yet"}
        b = await signalling.open("ask", peer, "127.0.0.1", "127.0.0.1")
        await signalling.handle_text(b, '{"type": "register", "port": 4102}')
        await signalling.handle_text(b, '{"type": "ready"}')
        await signalling.handle_text(b, '{"type": "relay"}')
        relay = next(m for m in drain(b) if m["type"] == "relay")
        assert relay["latency"] == 300 and relay["role"] == "receiver"
        assert relay["passphrase"] == created.session.passphrase
        assert next(m for m in drain(a) if m["type"] == "relay")["role"] == "sender"
        assert (await service.describe("ask", service.verify(created.token)))["state"] == (
            "RELAYING")
        process = service.relays.get("ask", "default").process
        assert process.returncode is None
    assert process.returncode is not None  # relays stop with the gateway


async def test_registrations_of_a_dead_process_go_stale(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    dead = BrokerageService(db, TokenSigner(b"k" * 32), _config())
    alive = BrokerageService(db, TokenSigner(b"k" * 32), _config())
    try:
        await dead.beat()  # it was alive when its peers registered
        created = await dead.create_session(
            CreateSession(name="crash", streams=[], latency=200, ttl=600), "127.0.0.1")
        token = dead.verify(dead.mint(created.session, "default"))
        lost = [await Signalling(dead).open("crash", token, "127.0.0.1", "127.0.0.1")
                for _ in range(2)]
        for port, connection in zip((4200, 4202), lost, strict=True):
            await Signalling(dead).handle_text(connection, json.dumps(
                {"type": "register", "port": port}))
        survivor = await Signalling(alive).open("crash", token, "127.0.0.1", "127.0.0.1")
        await Signalling(alive).handle_text(survivor, '{"type": "register", "port": 4204}')
        assert drain(survivor)[-1]["error"] == "STREAM_TAKEN"
        # the dead process never refreshes its rows; the living one sweeps them away
        now = time.time()
        alive.clock = lambda: now + 31
        assert await alive.heartbeat(now + 31) == ["crash"]
        assert drain(survivor)[-1] == {"type": "state", "state": "WAITING"}
        alive.clock = time.time
        await Signalling(alive).handle_text(survivor, '{"type": "register", "port": 4204}')
        assert next(m for m in drain(survivor) if m["type"] == "registered")["peer"] == "a"
        # a living process's own registrations stay fresh
        alive.clock = lambda: now + 62
        assert await alive.heartbeat(now + 62) == []
        assert (await alive.describe("crash", alive.verify(
            alive.mint(created.session))))["streams"]["default"]["peers"] == 1
    finally:
        await dead.stop()
        await alive.stop()
        await db.close()


async def test_registrations_of_a_replica_that_stopped_beating_are_free(
        database_url: str) -> None:
    """No 30 s wait: 3 s after a replica's last beat its registrations can be taken."""
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    gone = BrokerageService(db, TokenSigner(b"k" * 32), _config())
    alive = BrokerageService(db, TokenSigner(b"k" * 32), _config())
    try:
        await gone.beat()
        await alive.beat()
        created = await gone.create_session(
            CreateSession(name="beat", streams=["cam", "cam2"], latency=200, ttl=600),
            "127.0.0.1")
        admin = gone.verify(created.token)
        for port in (4300, 4302):
            held = await Signalling(gone).open("beat", admin, "127.0.0.1", "127.0.0.1")
            await Signalling(gone).handle_text(held, json.dumps(
                {"type": "register", "port": port, "stream": "cam"}))
        newcomer = await Signalling(alive).open("beat", admin, "127.0.0.1", "127.0.0.1")
        await Signalling(alive).handle_text(newcomer, json.dumps(
            {"type": "register", "port": 4304, "stream": "cam"}))
        assert drain(newcomer)[-1]["error"] == "STREAM_TAKEN"
        now = time.time()
        alive.clock = lambda: now + 2.5  # not yet dead
        await Signalling(alive).handle_text(newcomer, json.dumps(
            {"type": "register", "port": 4304, "stream": "cam"}))
        assert drain(newcomer)[-1]["error"] == "STREAM_TAKEN"
        alive.clock = lambda: now + 3.5
        await Signalling(alive).handle_text(newcomer, json.dumps(
            {"type": "register", "port": 4304, "stream": "cam"}))
        messages = drain(newcomer)
        assert {"type": "registered", "stream": "cam", "peer": "a"} in messages
        assert {"type": "state", "state": "WAITING"} in messages  # READY no more
        body = await alive.describe("beat", admin)
        assert body["streams"]["cam"] == {**body["streams"]["cam"], "peers": 1,
                                          "state": "WAITING"}
        # an admin without a stream finds the freed side too; this replica's own
        # registrations never count as dead, however late its clock says it is
        other = await Signalling(alive).open("beat", admin, "127.0.0.1", "127.0.0.1")
        alive.clock = lambda: now + 500
        await Signalling(alive).handle_text(other, '{"type": "register", "port": 4306}')
        assert {"type": "registered", "stream": "cam", "peer": "b"} in drain(other)
        assert await alive.heartbeat(now + 500) == []
        # the sweeper forgets replicas that have been gone for an hour
        alive.clock = lambda: now + 3700
        await alive.sweep()
        async with db.session() as session:
            from sqlalchemy import select

            from gateway.brokerage.models import PunchReplica

            assert gone.replica_id not in (await session.scalars(select(PunchReplica.id))).all()
    finally:
        await gone.stop()
        await alive.stop()
        await db.close()


async def test_a_relay_does_not_outlive_its_session_into_a_namesake(tmp_path: Path) -> None:
    """A session expires (not yet swept) and a new one takes its name: the old relay,
    with the old passphrase, must not serve the new session."""
    async with relaying_service(tmp_path) as (service, signalling):
        created = await service.create_session(
            CreateSession(name="same", streams=[], latency=200, ttl=60), "127.0.0.1")
        peer = service.verify(service.mint(created.session, "default"))
        a = await signalling.open("same", peer, "127.0.0.1", "127.0.0.1")
        b = await signalling.open("same", peer, "127.0.0.1", "127.0.0.1")
        for port, connection in ((4400, a), (4402, b)):
            await signalling.handle_text(connection, json.dumps(
                {"type": "register", "port": port}))
        await signalling.handle_text(a, '{"type": "relay"}')
        old = service.relays.get("same", "default")
        assert old is not None and old.process.returncode is None
        now = time.time()
        service.clock = lambda: now + 61
        await service.create_session(
            CreateSession(name="same", streams=[], latency=200, ttl=600), "127.0.0.1")
        await service.reap_relays()
        assert service.relays.get("same", "default") is None
        assert old.process.returncode is not None
