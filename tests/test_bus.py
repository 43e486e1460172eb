"""The replica bus: in process on SQLite, across connections with PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio

import pytest

from gateway.bus import LocalBus, PostgresBus, create_bus
from tests.pg import PostgresServer


async def test_local_bus_delivers_in_order_and_unsubscribes() -> None:
    bus = LocalBus()
    seen: list[dict] = []
    unsubscribe = await bus.subscribe("punch", seen.append)
    await bus.publish("punch", {"n": 1})
    await bus.publish("punch", {"n": 2})
    await bus.publish("other", {"n": 3})
    unsubscribe()
    await bus.publish("punch", {"n": 4})
    assert [m["n"] for m in seen] == [1, 2]
    assert all(m["_origin"] == bus.origin for m in seen)
    with pytest.raises(ValueError):
        await bus.publish("Bad Channel!", {})


async def test_postgres_bus_crosses_replicas(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    first, second = create_bus(url), create_bus(url)
    assert isinstance(first, PostgresBus) and isinstance(second, PostgresBus)
    received: dict[str, asyncio.Queue] = {"first": asyncio.Queue(), "second": asyncio.Queue()}
    try:
        await first.subscribe("punch", received["first"].put_nowait)
        await second.subscribe("punch", received["second"].put_nowait)
        await first.publish("punch", {"type": "peer", "stream": "cam"})
        for name in ("first", "second"):
            message = await asyncio.wait_for(received[name].get(), 5)
            assert message["type"] == "peer" and message["_origin"] == first.origin
        with pytest.raises(ValueError):
            await first.publish("punch", {"blob": "x" * 9000})
    finally:
        await first.close()
        await second.close()


def test_sqlite_deployments_use_the_local_bus(tmp_path) -> None:
    assert isinstance(create_bus(f"sqlite+aiosqlite:///{tmp_path}/x.db"), LocalBus)
