"""Punch domain logic: sessions, tokens, connection strings and the session state machine.

No Quart here: routes and the WebSocket handler call into this, and signalling fans out
through a `SignalBus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import string
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import __version__
from gateway.brokerage import connect
from gateway.brokerage.bus import Audience, LocalSignalBus, SignalBus
from gateway.brokerage.errors import PunchError, expired, not_found
from gateway.brokerage.models import PunchPeer, PunchReplica, PunchSession, PunchStream
from gateway.brokerage.relay import RelayManager
from gateway.brokerage.tokens import Claims, TokenError, TokenSigner
from gateway.db import Database

log = logging.getLogger("mediagate.brokerage")

WAITING, READY, CONNECTED, RELAYING, CLOSED = "WAITING", "READY", "CONNECTED", "RELAYING", "CLOSED"
_PRECEDENCE = {WAITING: 0, READY: 1, CONNECTED: 2, RELAYING: 3}
DEFAULT_STREAM = "default"
PASSPHRASE_LENGTH = 32
PBKEYLEN = 16
SWEEP_GRACE_SECONDS = 300
"""Expired sessions stay (CLOSED) this long before the sweeper deletes them."""
PEER_STALE_SECONDS = 30
"""A registration its process has not refreshed for this long belongs to a dead socket."""
HEARTBEAT_CHUNK = 500
TICK_SECONDS = 1.0
"""How often this process beats its replica row, and checks its relays."""
REPLICA_DEAD_SECONDS = 3.0
"""A replica that has not beaten for this long is dead: its registrations are free."""
REPLICA_FORGET_SECONDS = 3600
"""The sweeper deletes replica rows this old."""
_ALPHABET = string.ascii_letters + string.digits


def service_version() -> str:
    """The version reported in `/api/health` and the `Punch-Version` header."""
    return __version__


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class CreateSession:
    name: str
    streams: list[str]
    latency: int
    ttl: int
    turnstile_token: str | None = None


@dataclass(frozen=True)
class Created:
    session: PunchSession
    streams: list[str]
    token: str


@dataclass
class Config:
    max_streams: int
    default_ttl: int
    turnstile_secret: str | None
    turnstile_verify_url: str
    public_url: str | None


class BrokerageService:
    def __init__(self, db: Database, signer: TokenSigner, config: Config, *,
                 bus: SignalBus | None = None, relays: RelayManager | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.signer = signer
        self.config = config
        self.bus: SignalBus = bus or LocalSignalBus()
        self.relays = relays or RelayManager()
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: list[asyncio.Task[None]] = []
        self.connections: set[Any] = set()
        """This process's signalling connections (they live where their socket is)."""
        self.replica_id = str(uuid.uuid4())
        """This process in `punch_replica`; its registrations carry it."""

    # ---- tokens -------------------------------------------------------------------------

    def verify(self, token: str | None) -> Claims:
        try:
            return self.signer.verify(token, self.clock())
        except TokenError as exc:
            raise PunchError(401, exc.code, str(exc)) from None

    def authorize(self, token: str | None, session: str, *, admin: bool = False,
                  stream: str | None = None) -> Claims:
        """401 for a bad token; 403 for a good token that does not cover this resource."""
        claims = self.verify(token)
        if claims.session != session:
            raise PunchError(403, "AUTH_FAILED", "token is for another session")
        if admin and not claims.is_admin:
            raise PunchError(403, "AUTH_FAILED", "admin token required")
        if stream is not None and not claims.is_admin and claims.stream != stream:
            raise PunchError(403, "AUTH_FAILED", "peer token is for another stream")
        return claims

    def mint(self, session: PunchSession, stream: str | None = None) -> str:
        role = "admin" if stream is None else "peer"
        exp = int(_aware(session.expires_at).timestamp())
        return self.signer.sign(Claims(session=session.name, role=role, exp=exp, stream=stream))

    # ---- sessions -----------------------------------------------------------------------

    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def is_live(self, row: PunchSession) -> bool:
        return row.state != CLOSED and _aware(row.expires_at).timestamp() > self.clock()

    async def _live(self, db: AsyncSession, name: str, claims: Claims | None = None
                    ) -> PunchSession:
        row = await db.get(PunchSession, name)
        if row is None:
            raise not_found(name)
        if not self.is_live(row):
            raise expired(name)
        if claims is not None and claims.exp != int(_aware(row.expires_at).timestamp()):
            # tokens carry their session's expiry: one minted for an earlier session of
            # the same name does not fit this one
            raise PunchError(403, "AUTH_FAILED", "token is for an earlier session of this name")
        return row

    async def _streams(self, db: AsyncSession, name: str) -> list[PunchStream]:
        result = await db.execute(
            select(PunchStream).where(PunchStream.session_name == name)
            .order_by(PunchStream.position)
        )
        return list(result.scalars())

    async def _peers(self, db: AsyncSession, stream_ids: list[int]) -> list[PunchPeer]:
        if not stream_ids:
            return []
        result = await db.execute(
            select(PunchPeer).where(PunchPeer.stream_id.in_(stream_ids))
            .order_by(PunchPeer.label)
        )
        return list(result.scalars())

    async def verify_turnstile(self, token: str | None, remote_ip: str) -> None:
        secret = self.config.turnstile_secret
        if not secret:
            return
        if not token:
            raise PunchError(403, "TURNSTILE_FAILED", "turnstileToken is required")
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                reply = await http.post(self.config.turnstile_verify_url, data={
                    "secret": secret, "response": token, "remoteip": remote_ip,
                })
            ok = reply.status_code == 200 and reply.json().get("success") is True
        except (httpx.HTTPError, ValueError, AttributeError):
            log.warning("turnstile verification request failed", exc_info=True)
            ok = False
        if not ok:
            raise PunchError(403, "TURNSTILE_FAILED", "turnstile verification failed")

    async def create_session(self, request: CreateSession, remote_ip: str) -> Created:
        streams = request.streams or [DEFAULT_STREAM]
        if len(streams) > self.config.max_streams:
            raise PunchError(400, "INVALID_MESSAGE",
                             f"at most {self.config.max_streams} streams per session")
        if len(set(streams)) != len(streams):
            raise PunchError(400, "INVALID_MESSAGE", "stream names must be unique")
        await self.verify_turnstile(request.turnstile_token, remote_ip)
        now = self.clock()
        async with self.lock(request.name), self.db.session() as db:
            existing = await db.get(PunchSession, request.name)
            if existing is not None:
                if self.is_live(existing):
                    raise PunchError(409, "SESSION_EXISTS",
                                     f"a session named {request.name!r} already exists")
                await self._purge(db, existing.name)
            row = PunchSession(
                name=request.name, state=WAITING, latency=request.latency, ttl=request.ttl,
                passphrase="".join(secrets.choice(_ALPHABET) for _ in range(PASSPHRASE_LENGTH)),
                pbkeylen=PBKEYLEN, created_at=_utc(now), expires_at=_utc(now + request.ttl),
            )
            db.add(row)
            await db.flush()
            for position, stream in enumerate(streams):
                db.add(PunchStream(session_name=row.name, name=stream, position=position,
                                   state=WAITING, tally="off"))
        log.info("session %s created with %d stream(s)", row.name, len(streams))
        return Created(session=row, streams=streams, token=self.mint(row))

    async def _purge(self, db: AsyncSession, name: str) -> None:
        stream_ids = select(PunchStream.id).where(PunchStream.session_name == name)
        await db.execute(delete(PunchPeer).where(PunchPeer.stream_id.in_(stream_ids)))
        await db.execute(delete(PunchStream).where(PunchStream.session_name == name))
        await db.execute(delete(PunchSession).where(PunchSession.name == name))

    async def live_session(self, name: str) -> PunchSession:
        async with self.db.session() as db:
            return await self._live(db, name)

    async def stream_names(self, name: str) -> list[str]:
        async with self.db.session() as db:
            return [s.name for s in await self._streams(db, name)]

    async def describe(self, name: str, claims: Claims) -> dict[str, Any]:
        async with self.db.session() as db:
            row = await self._live(db, name, claims)
            streams = await self._streams(db, name)
            peers = await self._peers(db, [s.id for s in streams])
        counts: dict[int, int] = {}
        for peer in peers:
            counts[peer.stream_id] = counts.get(peer.stream_id, 0) + 1
        body: dict[str, Any] = {"session": row.name, "state": row.state, "streams": {}}
        for stream in streams:
            if not claims.is_admin and claims.stream != stream.name:
                continue
            entry: dict[str, Any] = {"state": stream.state, "peers": counts.get(stream.id, 0),
                                     "passphrase": row.passphrase, "tally": stream.tally}
            own = [p for p in peers if p.stream_id == stream.id]
            if own:
                entry["localPort"] = own[0].port
            body["streams"][stream.name] = entry
        body["expiresAt"] = int(_aware(row.expires_at).timestamp() * 1000)
        body["latency"] = row.latency
        return body

    async def close_session(self, name: str, *, reason: str = "closed") -> bool:
        """Mark the session CLOSED, stop its relays and tell every WebSocket. Idempotent."""
        async with self.lock(name), self.db.session() as db:
            row = await db.get(PunchSession, name)
            if row is None or row.state == CLOSED:
                return False
            row.state = CLOSED
            row.closed_at = _utc(self.clock())
            await db.execute(
                delete(PunchPeer).where(PunchPeer.stream_id.in_(
                    select(PunchStream.id).where(PunchStream.session_name == name)))
            )
        await self.relays.stop_session(name)
        await self.bus.publish(name, {"type": "state", "state": CLOSED}, Audience.everyone())
        log.info("session %s %s", name, reason)
        return True

    async def delete_session(self, name: str, claims: Claims) -> None:
        async with self.db.session() as db:
            await self._live(db, name, claims)
        await self.close_session(name)

    # ---- connection strings -----------------------------------------------------------

    async def connection_strings(self, name: str, claims: Claims, stream: str | None,
                                 role: connect.Role) -> dict[str, Any]:
        async with self.db.session() as db:
            row = await self._live(db, name, claims)
            streams = await self._streams(db, name)
            target = _pick_stream(streams, stream or (claims.stream if not claims.is_admin
                                                      else None))
            if not claims.is_admin and claims.stream != target.name:
                raise PunchError(403, "AUTH_FAILED", "peer token is for another stream")
            peers = {p.label: p for p in await self._peers(db, [target.id])}
        if "a" not in peers or "b" not in peers:
            raise PunchError(400, "INVALID_MESSAGE",
                             f"both peers of stream {target.name!r} must register first")
        a, b = peers["a"], peers["b"]
        stream_id = f"{row.name}/{target.name}"
        relay = target.relay_port_a is not None  # once relayed, the relay carries it
        if relay:
            sender = target.relay_sender or "a"
            role_a: connect.Role = "sender" if sender == "a" else "receiver"
            host = target.relay_host or "127.0.0.1"
            remote_a = connect.Endpoint(host, int(target.relay_port_a or 0))
            remote_b = connect.Endpoint(host, int(target.relay_port_b or 0))
        else:
            role_a = role
            remote_a, remote_b = connect.Endpoint(b.host, b.port), connect.Endpoint(a.host, a.port)

        def link(local: PunchPeer, remote: connect.Endpoint, side_role: connect.Role
                 ) -> connect.Link:
            return connect.Link(local_port=local.port, remote=remote, role=side_role,
                                latency_ms=row.latency, passphrase=row.passphrase,
                                pbkeylen=row.pbkeylen, stream_id=stream_id, relay=relay)

        return {
            "stream": target.name,
            "role": role,
            "for_peer_a": connect.formats(link(a, remote_a, role_a)),
            "for_peer_b": connect.formats(link(b, remote_b, connect.other(role_a))),
        }

    # ---- expiry -------------------------------------------------------------------------

    # ---- liveness -----------------------------------------------------------------------

    async def beat(self) -> None:
        """Tell the other replicas this process is alive (every TICK_SECONDS)."""
        now = _utc(self.clock())
        async with self.db.session() as db:
            updated = await db.execute(update(PunchReplica).where(
                PunchReplica.id == self.replica_id).values(seen_at=now))
            if not updated.rowcount:  # type: ignore[attr-defined]
                db.add(PunchReplica(id=self.replica_id, seen_at=now))

    def _held_by_dead_replica(self, now: float) -> ColumnElement[bool]:
        """Registrations whose replica has not beaten for REPLICA_DEAD_SECONDS (or has no
        row at all). Never this process's own: it is alive while it asks."""
        alive = select(PunchReplica.id).where(
            PunchReplica.seen_at >= _utc(now - REPLICA_DEAD_SECONDS))
        return and_(PunchPeer.replica.is_not(None), PunchPeer.replica != self.replica_id,
                    PunchPeer.replica.not_in(alive))

    async def free_dead_registrations(self, db: AsyncSession,
                                      streams: list[PunchStream]) -> bool:
        """Drop the streams' registrations held by a dead replica; True if there were any."""
        dead = (await db.execute(
            select(PunchPeer.id).where(PunchPeer.stream_id.in_([s.id for s in streams]),
                                       self._held_by_dead_replica(self.clock()))
        )).scalars().all()
        if dead:
            await self._drop_registrations(db, streams, list(dead))
            log.info("freed %d registration(s) of a dead replica in session %s", len(dead),
                     streams[0].session_name)
        return bool(dead)

    async def _drop_registrations(self, db: AsyncSession, streams: list[PunchStream],
                                  peer_ids: list[int]) -> None:
        """Delete these registrations; a READY stream that loses one is WAITING again."""
        affected = {p.stream_id for p in await self._peers(db, [s.id for s in streams])
                    if p.id in peer_ids}
        await db.execute(delete(PunchPeer).where(PunchPeer.id.in_(peer_ids)))
        for stream in streams:
            if stream.id in affected and stream.state == READY:
                stream.state = WAITING

    async def heartbeat(self, now: float) -> list[str]:
        """Refresh this process's registrations; drop stale ones (their socket or their
        replica died).

        Returns the sessions whose state changed.
        """
        ids = [c.id for c in list(self.connections) if getattr(c, "label", None)]
        async with self.db.session() as db:
            for start in range(0, len(ids), HEARTBEAT_CHUNK):
                await db.execute(update(PunchPeer).where(
                    PunchPeer.connection_id.in_(ids[start:start + HEARTBEAT_CHUNK])
                ).values(seen_at=_utc(now)))
            stale = (await db.execute(
                select(PunchPeer.id, PunchStream.session_name)
                .join(PunchStream, PunchStream.id == PunchPeer.stream_id)
                .where(or_(PunchPeer.seen_at < _utc(now - PEER_STALE_SECONDS),
                           self._held_by_dead_replica(now)))
            )).all()
        changed: list[str] = []
        for name in sorted({row.session_name for row in stale}):
            async with self.lock(name), self.db.session() as db:
                peer_ids = [row.id for row in stale if row.session_name == name]
                streams = await self._streams(db, name)
                await self._drop_registrations(db, streams, peer_ids)
                session = await db.get(PunchSession, name)
                new_state = await self.recompute(db, session) if session else None
            log.info("dropped %d stale peer registration(s) in session %s", len(peer_ids), name)
            if new_state:
                await self.bus.publish(name, {"type": "state", "state": new_state},
                                       Audience.everyone())
                changed.append(name)
        return changed

    async def sweep(self) -> int:
        """Close sessions past their TTL; delete closed ones after a grace period."""
        now = self.clock()
        await self.heartbeat(now)
        async with self.db.session() as db:
            due = (await db.execute(
                select(PunchSession.name).where(
                    PunchSession.state != CLOSED, PunchSession.expires_at <= _utc(now))
            )).scalars().all()
        for name in due:
            await self.close_session(name, reason="expired")
        async with self.db.session() as db:
            stale = (await db.execute(
                select(PunchSession.name).where(or_(
                    PunchSession.expires_at <= _utc(now - SWEEP_GRACE_SECONDS),
                    PunchSession.closed_at <= _utc(now - SWEEP_GRACE_SECONDS),
                ))
            )).scalars().all()
            for name in stale:
                await self._purge(db, name)
                self._locks.pop(name, None)
            await db.execute(delete(PunchReplica).where(
                PunchReplica.seen_at < _utc(now - REPLICA_FORGET_SECONDS)))
        return len(due)

    # ---- relays -------------------------------------------------------------------------

    async def reap_relays(self) -> None:
        """Stop this process's relays whose session is over (closed here or on another
        replica, or replaced by a new session of its name) or that have had no connected
        peer for the relay idle timeout."""
        for relay in self.relays.all():
            async with self.db.session() as db:
                row = await db.get(PunchSession, relay.session)
                live = (row is not None and self.is_live(row)
                        and row.passphrase == relay.passphrase)  # not a later namesake
                registered = live and bool(await db.scalar(
                    select(func.count()).select_from(PunchPeer)
                    .join(PunchStream, PunchStream.id == PunchPeer.stream_id)
                    .where(PunchStream.session_name == relay.session,
                           PunchStream.name == relay.stream)
                ))
            if not live:
                await self.relays.stop(relay.session, relay.stream)
            elif self.relays.unused_too_long(relay, signalling=registered):
                await self._end_unused_relay(relay.session, relay.stream)

    async def _end_unused_relay(self, name: str, stream_name: str) -> None:
        async with self.lock(name):
            await self.relays.stop(name, stream_name)
            async with self.db.session() as db:
                row = await db.get(PunchSession, name)
                stream = next((s for s in await self._streams(db, name)
                               if s.name == stream_name), None)
                if row is None or stream is None:
                    return
                stream.relay_host = stream.relay_sender = None
                stream.relay_port_a = stream.relay_port_b = None
                if stream.state in (RELAYING, CONNECTED):
                    stream.state = WAITING  # nobody is left on it
                changed = await self.recompute(db, row)
        log.info("relay for %s/%s stopped: no connected peer for %.0f s", name, stream_name,
                 self.relays.idle_timeout)
        if changed:
            await self.bus.publish(name, {"type": "state", "state": changed}, Audience.everyone())

    # ---- background work ----------------------------------------------------------------

    def start_sweeper(self, interval: float, tick: float = TICK_SECONDS) -> None:
        """`sweep` every `interval` s; every `tick` s `beat` and check the relays (apart:
        stopping a relay may take seconds, and a late beat looks like a dead replica)."""

        async def every(seconds: float, work: Callable[[], Awaitable[object]],
                        what: str) -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await work()
                except Exception:
                    log.exception("brokerage %s failed", what)

        self._background = [asyncio.create_task(every(interval, self.sweep, "sweep")),
                            asyncio.create_task(every(tick, self.beat, "replica beat")),
                            asyncio.create_task(every(tick, self.reap_relays, "relay check"))]

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.relays.stop_all()

    # ---- state machine helpers (used by signalling) -------------------------------------

    async def recompute(self, db: AsyncSession, row: PunchSession) -> str | None:
        """Derive the session state from its streams; return the new state if it changed."""
        if row.state == CLOSED:
            return None
        streams = await self._streams(db, row.name)
        state = max((s.state for s in streams), key=lambda s: _PRECEDENCE.get(s, 0),
                    default=WAITING)
        if state == row.state:
            return None
        row.state = state
        return state

    def relay_bind_host(self, relay_host: str) -> str:
        try:
            if ipaddress.ip_address(relay_host).is_loopback:
                return relay_host
        except ValueError:
            pass
        return ""


def _pick_stream(streams: list[PunchStream], name: str | None) -> PunchStream:
    if not streams:
        raise PunchError(400, "INVALID_MESSAGE", "session has no streams")
    if name is None:
        return streams[0]
    for stream in streams:
        if stream.name == name:
            return stream
    raise PunchError(400, "INVALID_MESSAGE", f"no stream named {name!r} in this session")
