"""Start/stop of part 2's per-app services (media library, chat, webhooks, connections)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.ratelimit import per_second

VIEWER_RATE = 2.0
VIEWER_BURST = 10

if TYPE_CHECKING:
    from gateway.state import GatewayState
    from gateway.studio.chat import ChatService


async def start_part2(state: GatewayState) -> None:
    from gateway.studio.chat import ChatService
    from gateway.studio.chat_adapters import default_adapters
    from gateway.studio.connections import ConnectionService
    from gateway.studio.events import StudioEventWatcher
    from gateway.studio.library import StudioLibrary
    from gateway.studio.webhooks import WebhookService

    library = StudioLibrary(state.settings, state.db, state.secret)
    await library.start()
    state.services["studio.library"] = library
    state.services["studio"].media_file = library.playable
    # Webhooks and chat platforms POST to client-supplied URLs: only through the egress guard.
    http = state.egress.http_client()
    state.services["studio.http"] = http
    webhooks = WebhookService(state.settings, state.db, state.secret, state.egress, http)
    webhooks.start()
    state.services["studio.webhooks"] = webhooks
    chat = ChatService(state.settings, state.db, state.secret, webhooks, default_adapters(http))
    state.services["studio.chat"] = chat
    # Keyless routes (the chat page's writers, platforms pushing in): per client address.
    state.services["studio.chat.ratelimit"] = per_second(VIEWER_RATE, VIEWER_BURST)
    state.stop_hooks.append(_end_feeds_when_draining(state, chat))
    connections = ConnectionService(state.settings, state.db, state.secret, state.egress)
    connections.start()
    state.services["studio.connections"] = connections
    state.services["studio"].bound_output = connections.output_for_studio
    watcher = StudioEventWatcher(state.services["studio"], webhooks)
    watcher.start()
    state.services["studio.events"] = watcher


async def stop_part2(state: GatewayState) -> None:
    watcher = state.services.pop("studio.events", None)
    if watcher is not None:
        await watcher.stop()
    connections = state.services.pop("studio.connections", None)
    if connections is not None:
        await connections.stop()
    chat = state.services.pop("studio.chat", None)
    if chat is not None:
        await chat.stop()
    webhooks = state.services.pop("studio.webhooks", None)
    if webhooks is not None:
        await webhooks.stop()
    http = state.services.pop("studio.http", None)
    if http is not None:
        await http.aclose()
    library = state.services.pop("studio.library", None)
    if library is not None:
        await library.stop()


def _end_feeds_when_draining(state: GatewayState,
                             chat: ChatService) -> Callable[[], Awaitable[None]]:
    """On SIGTERM, end the built-in chat's event streams so the server is not kept waiting
    on them (browsers' EventSource reconnects, to another replica)."""

    async def watch() -> None:
        await state.drain_started.wait()
        await chat.stop()

    task = asyncio.create_task(watch())

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return cancel
