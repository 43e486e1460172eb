"""Serving with Hypercorn.

SIGTERM drains: the readiness probe turns false at once, APIs refuse new media sessions,
existing peers get up to MEDIAGATE_SHUTDOWN_GRACE seconds to finish, then the server stops
(in-flight requests finish) and the media core closes what is left. SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from hypercorn.protocol import ws_stream
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

from gateway.app import create_app
from gateway.brokerage.signalling import MAX_MESSAGE_BYTES as PUNCH_MESSAGE_BYTES
from gateway.settings import Settings
from gateway.state import EXTENSION, GatewayState
from gateway.tasks import BackgroundTasks

log = logging.getLogger("mediagate.serve")
IN_FLIGHT_GRACE_SECONDS = 5.0
WEBSOCKET_MAX_MESSAGE_BYTES = PUNCH_MESSAGE_BYTES
"""Punch's signalling is the only WebSocket API: Hypercorn closes a socket with 1009 as soon
as a message grows past this, instead of buffering up to its default 16 MiB first."""


class BoundedWebsocketBuffer(ws_stream.WebsocketBuffer):
    """Hypercorn's message buffer, refusing a chunk *before* storing it.

    Hypercorn 0.18 appends each chunk and only then compares the length, and after it has
    sent 1009 it keeps appending the rest of the oversized message as it arrives. This one
    stores nothing past the limit: it raises once (Hypercorn sends 1009), drops the rest of
    that message, and at its end tells the app the socket is gone instead of delivering it.
    (Raising again would stop Hypercorn from reading the client's closing handshake.)
    """

    def __init__(self, max_length: int) -> None:
        super().__init__(max_length)
        self.refused = False

    def extend(self, event: ws_stream.Message) -> None:
        if self.refused:
            return
        if self.length + len(event.data) > self.max_length:
            self.refused, self.value = True, None
            raise ws_stream.FrameTooLargeError()
        super().extend(event)

    def clear(self) -> None:
        super().clear()
        self.refused = False

    def to_message(self) -> dict[str, Any]:
        if self.refused:
            return {"type": "websocket.disconnect", "code": CloseReason.MESSAGE_TOO_BIG.value}
        return super().to_message()


class DeclinedPerMessageDeflate(PerMessageDeflate):
    """permessage-deflate is never negotiated: wsproto inflates a compressed frame in one
    unbounded zlib call before any size check (8 KiB on the wire became 8 MiB in memory),
    and signalling messages are too small to gain from it. A compressed frame sent anyway
    is a protocol error."""

    def accept(self, offer: str) -> None:
        return None


def bound_websockets() -> None:
    """Hypercorn has no setting for these, and builds both objects per connection from
    its module globals: replace the two classes (idempotent)."""
    ws_stream.WebsocketBuffer = BoundedWebsocketBuffer  # type: ignore[misc]
    ws_stream.PerMessageDeflate = DeclinedPerMessageDeflate  # type: ignore[misc]


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host, port = settings.bind_host_port
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = IN_FLIGHT_GRACE_SECONDS
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    config.websocket_max_message_size = WEBSOCKET_MAX_MESSAGE_BYTES
    bound_websockets()
    return config


async def drain(state: GatewayState, grace: float) -> None:
    """Refuse new media sessions and wait (at most `grace` s) for the current ones to end."""
    state.drain_started.set()
    idle = asyncio.Event()

    def check(_event: object = None) -> None:
        if not state.media.peers:
            idle.set()

    remove = state.media.add_listener(check)
    check()
    log.info("draining: %d media peer(s), up to %.0fs", len(state.media.peers), grace)
    try:
        await asyncio.wait_for(idle.wait(), grace)
    except TimeoutError:
        log.info("drain grace over: closing %d media peer(s)", len(state.media.peers))
    finally:
        remove()


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    state: GatewayState = app.extensions[EXTENSION]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks = BackgroundTasks()

    def on_sigterm() -> None:
        if state.draining:
            return

        async def drain_then_stop() -> None:
            await drain(state, settings.shutdown_grace_seconds)
            stop.set()

        tasks.spawn(drain_then_stop())

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await hypercorn_serve(app, hypercorn_config(settings), shutdown_trigger=stop.wait)
