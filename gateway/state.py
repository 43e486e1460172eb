"""What the app holds for its lifetime, under `app.extensions["mediagate"]`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from quart import current_app

from gateway.bus import SignalBus
from gateway.db import Database
from gateway.egress import EgressPolicy
from gateway.keys import InstanceSecret
from gateway.logs import Redactor
from gateway.placement import Placement
from gateway.settings import Settings
from gateway.specs import SpecStore
from media import MediaCore

EXTENSION = "mediagate"


@dataclass
class GatewayState:
    settings: Settings
    db: Database
    secret: InstanceSecret
    redactor: Redactor
    specs: SpecStore
    media: MediaCore
    bus: SignalBus
    """Messages to every replica (LISTEN/NOTIFY on PostgreSQL, in-process on SQLite)."""
    placement: Placement
    """Which replica holds which media session."""
    egress: EgressPolicy
    """What client-supplied addresses the gateway may connect to."""
    instance_id: str | None = None
    drain_started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once on SIGTERM: this replica takes no new media sessions (see gateway.serve)."""
    services: dict[str, Any] = field(default_factory=dict)
    """Per-API service objects, keyed by API name."""
    stop_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def draining(self) -> bool:
        return self.drain_started.is_set()


def gateway_state() -> GatewayState:
    return current_app.extensions[EXTENSION]


def ensure_accepting_media() -> None:
    """APIs call this before creating a media session: a draining replica refuses (503)."""
    from gateway.errors import ApiError

    if gateway_state().draining:
        raise ApiError(503, "server is shutting down", headers={"Retry-After": "5"})
