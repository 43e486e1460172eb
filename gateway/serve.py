"""Serving with Hypercorn.

SIGTERM drains: the readiness probe turns false at once, APIs refuse new media sessions,
existing peers get up to MEDIAGATE_SHUTDOWN_GRACE seconds to finish, then the server stops
(in-flight requests finish) and the media core closes what is left. SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from gateway.app import create_app
from gateway.settings import Settings
from gateway.state import EXTENSION, GatewayState
from gateway.tasks import BackgroundTasks

log = logging.getLogger("mediagate.serve")
IN_FLIGHT_GRACE_SECONDS = 5.0


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host, port = settings.bind_host_port
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = IN_FLIGHT_GRACE_SECONDS
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
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
