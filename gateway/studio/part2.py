"""Start/stop of part 2's per-app services (media library, chat, webhooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.state import GatewayState


async def start_part2(state: GatewayState) -> None:
    from gateway.studio.library import StudioLibrary

    library = StudioLibrary(state.settings, state.db, state.secret)
    await library.start()
    state.services["studio.library"] = library


async def stop_part2(state: GatewayState) -> None:
    library = state.services.pop("studio.library", None)
    if library is not None:
        await library.stop()
