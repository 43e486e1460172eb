"""Fan-out of signalling messages to the WebSockets of a session.

`SignalBus` is the interface; `LocalSignalBus` delivers within this process. A bus
shared by replicas (e.g. PostgreSQL LISTEN/NOTIFY) publishes the same JSON envelope
(`session`, `audience`, `message`) and delivers it to its local subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

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
        for subscriber in list(self._subscribers.get(session, [])):
            if subscriber.wants(audience):
                subscriber.deliver(message)

    def subscriber_count(self, session: str) -> int:
        return len(self._subscribers.get(session, []))
