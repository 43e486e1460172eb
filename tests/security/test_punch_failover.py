"""A dead replica's Punch registrations are freed within seconds (finding 11 of issue 13).

Two real `mediagate serve` replicas on one PostgreSQL. Both peers of a stream register on
replica A; A is killed with SIGKILL (no clean-up runs); a peer on replica B must be able to
take the stream within 5 s (it used to stay `STREAM_TAKEN` for about 31 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

from tests.brokerage.helpers import Api, Peer
from tests.deploy.test_replicas import start_replica
from tests.pg import PostgresServer

FREED_WITHIN = 5.0


async def test_a_killed_replicas_registrations_are_free_within_5_s(
        postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database()
    a = start_replica(tmp_path, "a", url, PUNCH_RATE_LIMIT="0")
    b = start_replica(tmp_path, "b", url, PUNCH_RATE_LIMIT="0",
                      MEDIAGATE_MIGRATE_ON_START="false")
    on_a = Api(a.base_url)
    peers: list[Peer] = []
    try:
        created = on_a.create("failover")
        name, admin = created["session"], created["token"]
        for port in (7100, 7102):
            peer = await Peer.connect(a.base_url, name, admin)
            peers.append(peer)
            await peer.send({"type": "register", "port": port, "stream": "default"})
            await peer.expect("registered")
        newcomer = await Peer.connect(b.base_url, name, admin)
        peers.append(newcomer)
        await newcomer.send({"type": "register", "port": 7104, "stream": "default"})
        assert (await newcomer.expect("error"))["error"] == "STREAM_TAKEN"
        # let replica A beat a few times, so a stale first beat cannot explain the result
        await asyncio.sleep(2)

        a.stop(signal.SIGKILL)
        killed = time.monotonic()
        while True:
            await newcomer.send({"type": "register", "port": 7104, "stream": "default"})
            reply = await _reply(newcomer)
            if reply["type"] == "registered":
                break
            assert reply["error"] == "STREAM_TAKEN", reply
            assert time.monotonic() - killed < FREED_WITHIN, \
                "the dead replica's registrations are still taken"
            await asyncio.sleep(0.2)
        took = time.monotonic() - killed
        assert took < FREED_WITHIN, f"freed after {took:.1f} s"
        assert reply["peer"] in ("a", "b")
        # the second side is free too: another peer on B completes the pair
        second = await Peer.connect(b.base_url, name, admin)
        peers.append(second)
        await second.send({"type": "register", "port": 7106, "stream": "default"})
        await second.expect("registered")
        await second.expect("peer")
        state = Api(b.base_url).request("GET", f"/api/session/{name}", token=admin).json()
        assert state["streams"]["default"]["peers"] == 2
    finally:
        for peer in peers:
            with contextlib.suppress(Exception):  # sockets to the killed replica are gone
                await peer.close()
        on_a.close()
        a.stop()
        b.stop()


async def _reply(peer: Peer) -> dict[str, object]:
    while True:
        message = await peer.recv()
        if message["type"] in ("registered", "error"):
            return message
