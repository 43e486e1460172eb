"""Punch: SRT session brokerage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.apis import ApiMount
from gateway.brokerage.routes import SERVICE_KEY, create_blueprint
from gateway.brokerage.schemas import render_error
from gateway.brokerage.service import BrokerageService, Config
from gateway.brokerage.tokens import TokenSigner

if TYPE_CHECKING:
    from gateway.state import GatewayState

SWEEP_INTERVAL_SECONDS = 5.0


def build_service(state: GatewayState) -> BrokerageService:
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
    return BrokerageService(state.db, TokenSigner(key), config)


async def _start(state: GatewayState) -> None:
    service = build_service(state)
    state.services[SERVICE_KEY] = service
    service.start_sweeper(SWEEP_INTERVAL_SECONDS)


async def _stop(state: GatewayState) -> None:
    service = state.services.pop(SERVICE_KEY, None)
    if service is not None:
        await service.stop()


MOUNT = ApiMount(
    name="brokerage",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/api/health", "/api/session", "/api/ws/", "/s/"),
    exact_paths=("/",),
    start=_start,
    stop=_stop,
)
