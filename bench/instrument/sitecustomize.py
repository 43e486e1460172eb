"""Counters and what-if experiments inside `mediagate serve` for bench/control_plane.py
(nothing in gateway/ changes; this directory goes first on the server's PYTHONPATH).

With CONTROL_PLANE_WHATIF=<comma-separated list> the server runs with levers of issue 18
patched in, to measure their gain before anyone implements them:
  uvloop                the uvloop event loop (CONTROL_PLANE_WHATIF_PATH: where uvloop is)
  pool=SIZE/OVERFLOW    SQLAlchemy pool sizes (default 5/10)
  no_pre_ping           PostgreSQL connections without a ping at every checkout
  principal_cache       Studio keys and Calls app secrets resolved once per 5 s per key

With CONTROL_PLANE_COUNTS=<file>, the server counts SQL statements (by verb), transactions,
pool checkouts, new database connections, pre-pings, aiosqlite thread hand-offs, ORM
instances loaded, PBKDF2 runs, log records and garbage-collector passes (count, milliseconds,
longest pause since the last dump), and writes them as JSON to <file> on SIGUSR1."""

from __future__ import annotations

import os

_PATH = os.environ.get("CONTROL_PLANE_COUNTS")


def _install(path: str) -> None:
    import functools
    import gc
    import hashlib
    import json
    import logging
    import signal
    import time
    from collections import Counter

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Mapper
    from sqlalchemy.pool import Pool

    counts: Counter[str] = Counter()
    longest = {"pause": 0.0, "started": 0.0}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            longest["started"] = time.perf_counter()
            return
        pause = 1000 * (time.perf_counter() - longest["started"])
        counts[f"gc.gen{info['generation']}.passes"] += 1
        counts[f"gc.gen{info['generation']}.ms"] += pause
        longest["pause"] = max(longest["pause"], pause)

    gc.callbacks.append(on_gc)

    def count(name: str) -> None:
        counts[name] += 1

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        counts["statements"] += 1
        counts["statements." + statement.lstrip().split(None, 1)[0].upper()] += 1

    event.listen(Engine, "begin", lambda conn: count("transactions.begin"))
    event.listen(Engine, "commit", lambda conn: count("transactions.commit"))
    event.listen(Engine, "rollback", lambda conn: count("transactions.rollback"))
    event.listen(Pool, "checkout", lambda *a: count("pool.checkout"))
    event.listen(Pool, "connect", lambda *a: count("pool.new_connection"))
    event.listen(Pool, "close", lambda *a: count("pool.closed_connection"))
    event.listen(Pool, "reset", lambda *a: count("pool.reset_on_return"))
    event.listen(Mapper, "load", lambda target, context: count("orm.instances_loaded"))

    def counted(owner: object, name: str, key: str) -> None:
        original = getattr(owner, name)
        if getattr(original, "_counted", False):
            return
        if hasattr(original, "__code__") and original.__code__.co_flags & 0x80:  # async def

            @functools.wraps(original)
            async def async_wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
                counts[key] += 1
                return await original(*args, **kwargs)

            wrapper = async_wrapper
        else:

            @functools.wraps(original)
            def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
                counts[key] += 1
                return original(*args, **kwargs)

        wrapper._counted = True  # type: ignore[attr-defined]
        setattr(owner, name, wrapper)

    try:
        import aiosqlite.core

        counted(aiosqlite.core.Connection, "_execute", "aiosqlite.thread_handoffs")
    except ImportError:
        pass
    try:
        from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

        counted(PGDialect_asyncpg, "do_ping", "pool.pre_ping")
    except ImportError:
        pass
    counted(hashlib, "pbkdf2_hmac", "auth.pbkdf2")
    counted(logging.Logger, "callHandlers", "log.records")

    def dump(signum: int, frame: object) -> None:
        with open(path + ".tmp", "w") as handle:
            json.dump(dict(counts) | {"gc.longest_pause_ms": longest["pause"]}, handle)
        longest["pause"] = 0.0
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, dump)


def _whatif(levers: list[str]) -> None:
    import sys

    for lever in levers:
        name, _, value = lever.partition("=")
        if name == "uvloop":
            extra = os.environ.get("CONTROL_PLANE_WHATIF_PATH")
            if extra:
                sys.path.append(extra)
            import asyncio

            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        elif name in ("pool", "no_pre_ping"):
            _engine_options(name, value)
        elif name == "principal_cache":
            _principal_cache()
        else:
            raise SystemExit(f"CONTROL_PLANE_WHATIF: unknown lever {name!r}")


def _engine_options(name: str, value: str) -> None:
    import sqlalchemy.ext.asyncio as sa_asyncio

    original = sa_asyncio.create_async_engine

    def create_async_engine(url, **kwargs):  # type: ignore[no-untyped-def]
        if name == "pool":
            size, _, overflow = value.partition("/")
            kwargs.update(pool_size=int(size), max_overflow=int(overflow or 0))
        elif "postgresql" in str(url):
            kwargs["pool_pre_ping"] = False
        return original(url, **kwargs)

    sa_asyncio.create_async_engine = create_async_engine


def _principal_cache(ttl: float = 5.0) -> None:
    import time

    from gateway.calls.apps import AppStore
    from gateway.studio import apikeys

    studio_authenticate = apikeys.authenticate
    studio_seen: dict[str, tuple[float, object]] = {}

    async def authenticate(db, key):  # type: ignore[no-untyped-def]
        hit = studio_seen.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        principal = await studio_authenticate(db, key)
        if principal is not None:
            studio_seen[key] = (time.monotonic(), principal)
        return principal

    apikeys.authenticate = authenticate
    calls_authenticate = AppStore.authenticate
    calls_seen: dict[tuple[str, str], float] = {}

    async def calls_cached(self, app_id, secret):  # type: ignore[no-untyped-def]
        seen = calls_seen.get((app_id, secret))
        if seen is not None and time.monotonic() - seen < ttl:
            return True
        ok = await calls_authenticate(self, app_id, secret)
        if ok:
            calls_seen[(app_id, secret)] = time.monotonic()
        return ok

    AppStore.authenticate = calls_cached


if os.environ.get("CONTROL_PLANE_WHATIF"):
    _whatif([w.strip() for w in os.environ["CONTROL_PLANE_WHATIF"].split(",") if w.strip()])
if _PATH:
    _install(_PATH)
