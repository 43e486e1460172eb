"""Studio: the TRaX /v1 developer API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.apis import ApiMount
from gateway.ratelimit import per_second
from gateway.studio.cli import add_commands
from gateway.studio.routes import create_blueprint
from gateway.studio.schemas import render_error

if TYPE_CHECKING:
    from gateway.state import GatewayState


async def start(state: GatewayState) -> None:
    from gateway.studio.apikeys import ensure_bootstrap_key
    from gateway.studio.service import StudioService

    settings = state.settings
    if settings.bootstrap_api_key is not None:
        await ensure_bootstrap_key(state.db, settings.bootstrap_api_key.get_secret_value())
    service = StudioService(settings, state.db, state.secret, state.media, egress=state.egress)
    await service.start()
    state.services["studio"] = service
    state.services["studio.ratelimit"] = per_second(
        settings.studio_rate_limit_rps, settings.studio_rate_limit_burst
    )
    from gateway.studio.part2 import start_part2
    await start_part2(state)


async def stop(state: GatewayState) -> None:
    from gateway.studio.part2 import stop_part2
    await stop_part2(state)
    service = state.services.pop("studio", None)
    if service is not None:
        await service.stop()


MOUNT = ApiMount(
    name="studio",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/v1/",),
    start=start,
    stop=stop,
    add_commands=add_commands,
)
