"""punktfunk management API: the control plane for the gateway host."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.apis import ApiMount
from gateway.host.cli import add_commands
from gateway.host.routes import create_blueprint
from gateway.host.schemas import render_error

log = logging.getLogger("mediagate.host")

if TYPE_CHECKING:
    from gateway.state import GatewayState


async def _start(state: GatewayState) -> None:
    from gateway.host.auth import resolve_token
    from gateway.host.devices import DeviceServer
    from gateway.host.gamestream import GameStreamPairing, load_or_create_identity
    from gateway.host.native import NativePairing
    from gateway.host.service import HostService

    settings = state.settings
    token = resolve_token(settings)
    if token is not None:
        state.redactor.add(token)
    service = HostService(settings, state.db, state.media, token)
    await service.start()
    enabled = settings.gamestream_http_port != 0
    service.native = NativePairing(service.store, enabled=enabled)
    if enabled:
        import asyncio

        identity = await asyncio.to_thread(load_or_create_identity, service.data_dir)
        service.pairing = GameStreamPairing(service.store, identity)
        service.devices = DeviceServer(settings, uniqueid=service.uniqueid,
                                       pairing=service.pairing, native=service.native,
                                       store=service.store, codecs=service.codecs)
        try:
            await service.devices.start()
        except OSError as exc:
            log.error("host: device server cannot listen (%s); GameStream and native pairing "
                      "are off", exc)
            await service.devices.stop()
            service.devices = service.pairing = None
            service.native.enabled = False
    state.services["host"] = service


async def _stop(state: GatewayState) -> None:
    service = state.services.pop("host", None)
    if service is None:
        return
    if service.devices is not None:
        await service.devices.stop()
    await service.stop()


MOUNT = ApiMount(
    name="host",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/api/v1/",),
    start=_start,
    stop=_stop,
    add_commands=add_commands,
)
