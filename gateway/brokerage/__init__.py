"""Punch: SRT session brokerage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.apis import ApiMount
from gateway.brokerage.bus import ReplicatedSignalBus
from gateway.brokerage.relay import RelayManager
from gateway.brokerage.routes import SERVICE_KEY, create_blueprint
from gateway.brokerage.schemas import render_error
from gateway.brokerage.service import BrokerageService, Config
from gateway.brokerage.signalling import GOING_AWAY
from gateway.brokerage.tokens import TokenSigner

if TYPE_CHECKING:
    from gateway.state import GatewayState

SWEEP_INTERVAL_SECONDS = 5.0


def build_service(state: GatewayState, bus: ReplicatedSignalBus) -> BrokerageService:
    settings = state.settings
    key = (settings.punch_secret.get_secret_value().encode() if settings.punch_secret
           else state.secret.derive("punch-token"))
    config = Config(
        max_streams=settings.punch_max_streams,
        default_ttl=settings.punch_default_ttl,
        turnstile_secret=(settings.turnstile_secret.get_secret_value()
                          if settings.turnstile_secret else None),
        turnstile_verify_url=settings.turnstile_verify_url,
        public_url=settings.public_url,
    )
    relays = RelayManager(max_relays=settings.punch_max_relays,
                          idle_timeout=settings.punch_relay_idle_timeout)
    return BrokerageService(state.db, TokenSigner(key), config, bus=bus, relays=relays)


async def _start(state: GatewayState) -> None:
    bus = ReplicatedSignalBus(state.bus)
    await bus.start()
    service = build_service(state, bus)
    await service.beat()  # alive before its first registration
    state.services[SERVICE_KEY] = service
    service.start_sweeper(SWEEP_INTERVAL_SECONDS)
    state.stop_hooks.append(_watch_draining(state, service))


def _watch_draining(state: GatewayState,
                    service: BrokerageService) -> Callable[[], Awaitable[None]]:
    """When the replica starts draining, close its signalling sockets with 1001 so clients
    reconnect elsewhere and the server is not kept waiting on them."""

    async def watch() -> None:
        await state.drain_started.wait()
        for connection in list(service.connections):
            connection.deliver(GOING_AWAY)

    task = asyncio.create_task(watch())

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return cancel


async def _stop(state: GatewayState) -> None:
    service = state.services.pop(SERVICE_KEY, None)
    if service is not None:
        await service.stop()
        if isinstance(service.bus, ReplicatedSignalBus):
            service.bus.stop()


MOUNT = ApiMount(
    name="brokerage",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/api/health", "/api/session", "/api/ws/", "/s/"),
    exact_paths=("/",),
    start=_start,
    stop=_stop,
)
