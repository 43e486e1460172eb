"""Chat platform adapters: how a studio's unified chat reaches (and hears from) a platform.

An adapter is one small module with one class implementing `ChatAdapter`; register it in
`default_adapters()`. The chat service stores every message, then calls `deliver` on each
enabled platform's adapter; a platform that pushes messages in calls the inbound route,
which hands the raw request to `parse_inbound` and stores what it returns. README
"Studio chat: adding a platform" walks through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class ChatTarget:
    """A platform's settings for one studio (url and shared secret when it has them)."""

    studio_id: str
    platform: str
    url: str | None
    secret: str | None


@dataclass(frozen=True)
class ChatEnvelope:
    id: str
    studio_id: str
    platform: str
    author_id: str | None
    author_display_name: str
    text: str
    timestamp: str

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id, "studioId": self.studio_id, "platform": self.platform,
            "authorDisplayName": self.author_display_name, "text": self.text,
            "timestamp": self.timestamp,
        }
        if self.author_id is not None:
            body["authorId"] = self.author_id
        return body


@dataclass(frozen=True)
class InboundMessage:
    author_display_name: str
    text: str
    author_id: str | None = None
    replay_key: str | None = None
    """For signed requests: what identifies this one (e.g. its canonical signature). The
    chat service refuses a second request with the same key, on any replica, with
    `signing.REJECTED`."""
    signed_at: int | None = None
    """The request's signed unix time: the key is remembered for as long as it verifies."""


class DeliveryFailed(Exception):
    """The platform did not take the message. The text goes to the server log only: API
    callers see `egress.DELIVERY_FAILED`, whatever happened."""


class InboundRejected(Exception):
    """An inbound request that is not a message (or, `unauthenticated`, not authentic).

    The text is safe to show to the caller.
    """

    def __init__(self, message: str, *, unauthenticated: bool = False) -> None:
        super().__init__(message)
        self.unauthenticated = unauthenticated


class ChatAdapter(Protocol):
    platform: str
    needs_url: bool
    """Whether the platform must be configured with a url (and secret) before enabling."""

    async def deliver(self, target: ChatTarget, message: ChatEnvelope) -> None:
        """Send one message to the platform; raise DeliveryFailed when it is not taken.
        Client-supplied URLs are reached only through the egress guard's client."""

    def parse_inbound(self, target: ChatTarget, headers: Mapping[str, str],
                      body: bytes) -> InboundMessage:
        """Authenticate and parse a message the platform pushed to the gateway."""


def default_adapters(http: httpx.AsyncClient) -> dict[str, ChatAdapter]:
    """`http`: the egress guard's client (`EgressPolicy.http_client`)."""
    from gateway.studio.chat_adapters.builtin import BuiltinChatAdapter
    from gateway.studio.chat_adapters.webhook import WebhookChatAdapter

    adapters: list[ChatAdapter] = [BuiltinChatAdapter(), WebhookChatAdapter(http)]
    return {adapter.platform: adapter for adapter in adapters}
