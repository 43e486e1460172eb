"""Fan-out of signalling messages to the WebSockets of a session.

`SignalBus` is the interface; `LocalSignalBus` delivers within this process.
`ReplicatedSignalBus` publishes the JSON envelope (`session`, `audience`, `message`) on
the gateway's replica bus (PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL), and
every replica delivers it to the sockets it holds: two peers of a stream may sit on
different replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from gateway.bus import SignalBus as ReplicaBus

AudienceKind = Literal["all", "admins", "peer"]


@dataclass(frozen=True)
class Audience:
    kind: AudienceKind
    stream: str | None = None
    label: str | None = None

    @classmethod
    def everyone(cls) -> Audience:
        return cls("all")

    @classmethod
    def admins(cls) -> Audience:
        return cls("admins")

    @classmethod
    def peer(cls, stream: str, label: str) -> Audience:
        return cls("peer", stream, label)


class Subscriber(Protocol):
    def wants(self, audience: Audience) -> bool: ...

    def deliver(self, message: dict[str, Any]) -> None: ...


class SignalBus(Protocol):
    def subscribe(self, session: str, subscriber: Subscriber) -> None: ...

    def unsubscribe(self, session: str, subscriber: Subscriber) -> None: ...

    async def publish(self, session: str, message: dict[str, Any], audience: Audience) -> None:
        ...

    def subscriber_count(self, session: str) -> int: ...


class LocalSignalBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, session: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(session, []).append(subscriber)

    def unsubscribe(self, session: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(session, [])
        if subscriber in subscribers:
            subscribers.remove(subscriber)
        if not subscribers:
            self._subscribers.pop(session, None)

    async def publish(self, session: str, message: dict[str, Any], audience: Audience) -> None:
        self._deliver(session, message, audience)

    def _deliver(self, session: str, message: dict[str, Any], audience: Audience) -> None:
        for subscriber in list(self._subscribers.get(session, [])):
            if subscriber.wants(audience):
                subscriber.deliver(message)

    def subscriber_count(self, session: str) -> int:
        return len(self._subscribers.get(session, []))


class ReplicatedSignalBus(LocalSignalBus):
    CHANNEL = "punch"

    def __init__(self, replicas: ReplicaBus) -> None:
        super().__init__()
        self._replicas = replicas
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        self._unsubscribe = await self._replicas.subscribe(self.CHANNEL, self._on_envelope)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def publish(self, session: str, message: dict[str, Any], audience: Audience) -> None:
        envelope = {"session": session, "audience": asdict(audience), "message": message}
        await self._replicas.publish(self.CHANNEL, envelope)

    def _on_envelope(self, envelope: dict[str, Any]) -> None:
        try:
            audience = Audience(**envelope["audience"])
            session, message = envelope["session"], envelope["message"]
        except (KeyError, TypeError):
            return
        self._deliver(session, message, audience)
