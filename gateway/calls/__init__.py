"""Cloudflare Calls-compatible SFU API, under `/v1/apps/...` and `/apps/...`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from gateway.apis import ApiMount
from gateway.calls.cli import add_commands
from gateway.calls.live_access import LiveRoomAccess
from gateway.calls.routes import create_blueprint
from gateway.calls.schemas import render_error
from gateway.calls.service import CallsService, placement_key

if TYPE_CHECKING:
    from gateway.state import GatewayState

log = logging.getLogger("mediagate.calls")


async def start(state: GatewayState) -> None:
    service = CallsService(state.db, state.media, LiveRoomAccess(state.settings))

    async def release(session_id: str) -> None:
        await state.placement.release(placement_key(session_id))

    service.on_session_closed = release
    state.services["calls"] = service
    service.start()
    settings = state.settings
    if settings.calls_app_id and settings.calls_app_secret:
        secret = settings.calls_app_secret.get_secret_value()
        try:
            await service.apps.ensure(settings.calls_app_id, secret)
        except IntegrityError:  # another replica created it at the same moment
            await service.apps.ensure(settings.calls_app_id, secret)
        log.info("calls app %s is ready (CALLS_APP_ID)", settings.calls_app_id)


async def stop(state: GatewayState) -> None:
    service = state.services.pop("calls", None)
    if isinstance(service, CallsService):
        await service.stop()


MOUNT = ApiMount(
    name="calls",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/v1/apps/", "/apps/"),
    url_prefixes=("/v1", ""),
    start=start,
    stop=stop,
    add_commands=add_commands,
)
