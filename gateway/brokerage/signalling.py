"""The signalling WebSocket's protocol: validate, apply to the state machine, fan out.

One `SignalConnection` per WebSocket. Each connection that registers is one peer (`a`
or `b`) of its stream. Every inbound message is validated against
`specs/punch-messages.schema.json`; an invalid one gets an `error` reply and the
connection stays usable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.brokerage.bus import Audience
from gateway.brokerage.errors import PunchError
from gateway.brokerage.models import PunchPeer, PunchSession, PunchStream
from gateway.brokerage.relay import RelayLimitReached
from gateway.brokerage.service import (
    CLOSED,
    CONNECTED,
    READY,
    RELAYING,
    WAITING,
    BrokerageService,
)
from gateway.brokerage.tokens import Claims
from gateway.specs import SpecStore

log = logging.getLogger("mediagate.brokerage.signalling")

SCHEMA_ID = "urn:mediagate:punch-messages"
MAX_MESSAGE_BYTES = 64 * 1024


@cache
def _validator(definition: str) -> Draft202012Validator:
    schema = SpecStore().get("punch-messages")
    registry = Registry().with_resource(SCHEMA_ID, Resource.from_contents(schema))
    return Draft202012Validator({"$ref": f"{SCHEMA_ID}#/$defs/{definition}"}, registry=registry)


def client_message_errors(message: Any) -> list[str]:
    validator = _validator("ClientMessage")
    return [error.message for error in validator.iter_errors(message)]


class SignalError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False)
class SignalConnection:
    session: str
    claims: Claims
    host: str
    """The peer's public address: the WebSocket's remote address."""
    server_host: str
    """The host the client reached the gateway at (where a relay is offered)."""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    stream: str | None = None
    label: str | None = None
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def wants(self, audience: Audience) -> bool:
        if audience.kind == "all":
            return True
        if audience.kind == "admins":
            return self.claims.is_admin
        return self.stream == audience.stream and self.label == audience.label

    def deliver(self, message: dict[str, Any]) -> None:
        self.outbox.put_nowait(message)


GOING_AWAY: dict[str, Any] = {}
"""Queued (by identity) to close a socket with 1001 when this replica shuts down."""


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": code, "message": message}


class Signalling:
    def __init__(self, service: BrokerageService) -> None:
        self.service = service

    async def open(self, name: str, claims: Claims, host: str, server_host: str
                   ) -> SignalConnection:
        async with self.service.db.session() as db:
            row = await self.service._live(db, name, claims)
        connection = SignalConnection(name, claims, host, server_host)
        self.service.bus.subscribe(name, connection)
        self.service.connections.add(connection)
        connection.deliver({"type": "state", "state": row.state})
        return connection

    async def close(self, connection: SignalConnection) -> None:
        self.service.bus.unsubscribe(connection.session, connection)
        self.service.connections.discard(connection)
        if connection.label is None:
            return
        service = self.service
        async with service.lock(connection.session), service.db.session() as db:
            peer = (await db.execute(
                select(PunchPeer).where(PunchPeer.connection_id == connection.id)
            )).scalar_one_or_none()
            if peer is None:
                return
            await db.delete(peer)
            stream = await db.get(PunchStream, peer.stream_id)
            row = await db.get(PunchSession, connection.session)
            changed = None
            if stream is not None and row is not None and stream.state == READY:
                stream.state = WAITING
                changed = await service.recompute(db, row)
        if changed:
            await self._announce_state(connection.session, changed)

    async def handle_text(self, connection: SignalConnection, text: str | bytes) -> None:
        """Parse, validate and apply one inbound frame; errors go back as `error`."""
        try:
            if len(text) > MAX_MESSAGE_BYTES:
                raise SignalError("INVALID_MESSAGE", "message too large")
            try:
                message = json.loads(text)
            except (ValueError, UnicodeDecodeError):
                raise SignalError("INVALID_MESSAGE", "message is not JSON") from None
            problems = client_message_errors(message)
            if problems:
                raise SignalError("INVALID_MESSAGE", f"invalid message: {problems[0]}")
            await self.dispatch(connection, message)
        except SignalError as exc:
            connection.deliver(error_message(exc.code, exc.message))
        except PunchError as exc:
            connection.deliver(error_message(exc.code, exc.message))

    async def dispatch(self, connection: SignalConnection, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "register":
            await self.register(connection, message.get("port"), message.get("stream"))
        elif kind == "status":
            await self.status(connection, message["srt"])
        elif kind == "health":
            await self.health(connection, message)
        elif kind == "tally":
            await self.tally(connection, message["stream"], message["state"])
        elif kind == "ready":
            await self.ready(connection)
        elif kind == "relay":
            await self.relay_request(connection)

    # ---- handlers -----------------------------------------------------------------------

    async def register(self, connection: SignalConnection, port: int, stream_name: str | None
                       ) -> None:
        claims = connection.claims
        if not claims.is_admin and stream_name is not None and stream_name != claims.stream:
            raise SignalError("AUTH_FAILED", "peer token is for another stream")
        if connection.stream is not None and stream_name not in (None, connection.stream):
            raise SignalError("INVALID_MESSAGE",
                              f"already registered on stream {connection.stream!r}")
        service = self.service
        async with service.lock(connection.session):
            async with service.db.session() as db:
                row = await service._live(db, connection.session)
                streams = await service._streams(db, row.name)
                await service.free_dead_registrations(db, streams)
                wanted = stream_name or connection.stream or (
                    claims.stream if not claims.is_admin
                    else await self._first_open_stream(db, streams))
                stream = next((s for s in streams if s.name == wanted), None)
                if stream is None:
                    raise SignalError("INVALID_MESSAGE", f"no stream named {wanted!r}")
                peers = {p.label: p for p in await service._peers(db, [stream.id])}
                mine = next((p for p in peers.values() if p.connection_id == connection.id),
                            None)
                if mine is not None:
                    mine.port = port
                    label = mine.label
                else:
                    free = [label for label in ("a", "b") if label not in peers]
                    if not free:
                        raise SignalError("STREAM_TAKEN",
                                          f"stream {stream.name!r} already has two peers")
                    label = free[0]
                    new_peer = PunchPeer(
                        stream_id=stream.id, label=label, connection_id=connection.id,
                        host=connection.host, port=port, ready=False,
                        replica=service.replica_id,
                        registered_at=datetime.fromtimestamp(service.clock(), UTC),
                        seen_at=datetime.fromtimestamp(service.clock(), UTC),
                    )
                    db.add(new_peer)
                    try:
                        await db.flush()
                    except IntegrityError:
                        raise SignalError("STREAM_TAKEN",
                                          f"stream {stream.name!r} already has two peers"
                                          ) from None
                    peers[label] = new_peer
                connection.stream, connection.label = stream.name, label
                matched = len(peers) == 2
                if matched and stream.state in (WAITING, READY):
                    stream.state = READY
                changed = await service.recompute(db, row)
                pair = (peers.get("a"), peers.get("b"))
                latency, passphrase = row.latency, row.passphrase
            connection.deliver({"type": "registered", "stream": stream.name, "peer": label})
            if matched and pair[0] is not None and pair[1] is not None:
                await self._announce_match(connection.session, stream.name, pair[0], pair[1],
                                           latency, passphrase)
            if changed:
                await self._announce_state(connection.session, changed)

    async def _first_open_stream(self, db: Any, streams: list[PunchStream]) -> str:
        """An admin registering without `stream` takes the first stream with a free side."""
        taken: dict[int, int] = {}
        for peer in await self.service._peers(db, [s.id for s in streams]):
            taken[peer.stream_id] = taken.get(peer.stream_id, 0) + 1
        for stream in streams:
            if taken.get(stream.id, 0) < 2:
                return stream.name
        raise SignalError("SESSION_FULL", "every stream of this session has two peers")

    async def _announce_match(self, session: str, stream: str, a: PunchPeer, b: PunchPeer,
                              latency: int, passphrase: str) -> None:
        bus = self.service.bus
        for me, other in ((a, b), (b, a)):
            await bus.publish(session, {
                "type": "peer", "stream": stream, "host": other.host, "port": other.port,
                "passphrase": passphrase, "latency": latency, "mode": "rendezvous",
            }, Audience.peer(stream, me.label))
        await bus.publish(session, {
            "type": "peer_match", "stream": stream,
            "peers": [{"host": p.host, "port": p.port} for p in (a, b)],
        }, Audience.admins())

    async def _announce_state(self, session: str, state: str) -> None:
        await self.service.bus.publish(session, {"type": "state", "state": state},
                                       Audience.everyone())

    def _registered(self, connection: SignalConnection) -> tuple[str, str]:
        if connection.stream is None or connection.label is None:
            raise SignalError("INVALID_MESSAGE", "register first")
        return connection.stream, connection.label

    async def _load(self, db: Any, connection: SignalConnection
                    ) -> tuple[PunchSession, PunchStream, dict[str, PunchPeer]]:
        stream_name, _ = self._registered(connection)
        row = await self.service._live(db, connection.session)
        stream = next(s for s in await self.service._streams(db, row.name)
                      if s.name == stream_name)
        peers = {p.label: p for p in await self.service._peers(db, [stream.id])}
        return row, stream, peers

    async def status(self, connection: SignalConnection, srt: str) -> None:
        _, label = self._registered(connection)
        service = self.service
        start_relay = False
        changed = None
        async with service.lock(connection.session):
            async with service.db.session() as db:
                row, stream, peers = await self._load(db, connection)
                me = peers.get(label)
                if me is None or me.connection_id != connection.id:
                    raise SignalError("INVALID_MESSAGE", "register first")
                me.srt = srt
                if srt == "connected" and stream.state in (READY, RELAYING, CONNECTED):
                    stream.state = CONNECTED
                    changed = await service.recompute(db, row)
                elif srt == "error" and stream.state == READY and len(peers) == 2 and all(
                        p.srt == "error" for p in peers.values()):
                    start_relay = True
            if changed:
                await self._announce_state(connection.session, changed)
            if start_relay:
                await self._start_relay(connection, sender="a")

    async def relay_request(self, connection: SignalConnection) -> None:
        self._registered(connection)
        async with self.service.lock(connection.session):
            async with self.service.db.session() as db:
                _, stream, peers = await self._load(db, connection)
            if len(peers) < 2 or stream.state == WAITING:
                raise SignalError("INVALID_MESSAGE", "the stream has no matched peers yet")
            await self._start_relay(connection, sender="a")

    async def _start_relay(self, connection: SignalConnection, sender: str) -> None:
        """Start (or re-announce) the stream's relay; caller holds the session lock."""
        service = self.service
        session, stream_name = connection.session, connection.stream
        assert stream_name is not None
        host = _relay_host(service.config.public_url, connection.server_host)
        async with service.db.session() as db:
            row, _, _ = await self._load(db, connection)
            latency, passphrase, pbkeylen = row.latency, row.passphrase, row.pbkeylen

        async def flowing() -> None:
            await self._relay_flowing(session, stream_name)

        async def failed() -> None:
            await service.close_session(session, reason="closed: relay failed")

        if not service.relays.available:
            raise SignalError("SERVER_ERROR", "relay is not available on this gateway")
        try:
            relay = await service.relays.start(
                session, stream_name, bind_host=service.relay_bind_host(host),
                passphrase=passphrase, pbkeylen=pbkeylen, latency_ms=latency,
                on_flowing=flowing, on_failed=failed,
            )
        except RelayLimitReached:
            raise SignalError("SERVER_ERROR", "no relay available: this gateway runs its "
                              "limit of relays; try again later") from None
        ports = {sender: relay.source_port, "b" if sender == "a" else "a": relay.target_port}
        async with service.db.session() as db:
            row, stream, _peers = await self._load(db, connection)
            stream.state = RELAYING
            stream.relay_host, stream.relay_sender = host, sender
            stream.relay_port_a, stream.relay_port_b = ports["a"], ports["b"]
            changed = await service.recompute(db, row)
        for label in ("a", "b"):
            await service.bus.publish(session, {
                "type": "relay", "stream": stream_name, "host": host, "port": ports[label],
                "mode": "caller", "passphrase": passphrase, "latency": latency,
                "role": "sender" if label == sender else "receiver",
            }, Audience.peer(stream_name, label))
        if changed:
            await self._announce_state(session, changed)

    async def _relay_flowing(self, session: str, stream_name: str) -> None:
        service = self.service
        async with service.lock(session), service.db.session() as db:
            row = await db.get(PunchSession, session)
            if row is None or row.state == CLOSED:
                return
            stream = next((s for s in await service._streams(db, session)
                           if s.name == stream_name), None)
            if stream is None or stream.state != RELAYING:
                return
            stream.state = CONNECTED
            changed = await service.recompute(db, row)
        if changed:
            await self._announce_state(session, changed)

    async def health(self, connection: SignalConnection, message: dict[str, Any]) -> None:
        stream, label = self._registered(connection)
        event: dict[str, Any] = {"type": "health", "stream": stream, "peer": label,
                                 "status": message["status"]}
        for key in ("rtt", "loss", "bitrate"):
            if key in message:
                event[key] = message[key]
        await self.service.bus.publish(connection.session, event, Audience.admins())

    async def tally(self, connection: SignalConnection, stream_name: str, state: str) -> None:
        if not connection.claims.is_admin:
            raise SignalError("AUTH_FAILED", "tally needs the admin token")
        async with self.service.lock(connection.session), self.service.db.session() as db:
            row = await self.service._live(db, connection.session)
            stream = next((s for s in await self.service._streams(db, row.name)
                           if s.name == stream_name), None)
            if stream is None:
                raise SignalError("INVALID_MESSAGE", f"no stream named {stream_name!r}")
            stream.tally = state
        await self.service.bus.publish(
            connection.session, {"type": "tally", "stream": stream_name, "state": state},
            Audience.everyone())

    async def ready(self, connection: SignalConnection) -> None:
        _, label = self._registered(connection)
        async with self.service.db.session() as db:
            _, _, peers = await self._load(db, connection)
            me = peers.get(label)
            if me is not None and me.connection_id == connection.id:
                me.ready = True


def _relay_host(public_url: str | None, server_host: str) -> str:
    if public_url:
        from urllib.parse import urlsplit

        host = urlsplit(public_url).hostname
        if host:
            return host
    return server_host


__all__ = ["CLOSED", "SignalConnection", "Signalling"]
