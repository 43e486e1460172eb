"""SRT relay fallback: one supervised `srt-live-transmit` per stream.

The relay listens on two UDP ports (sender side, receiver side) with the session's
passphrase; both peers call it. `srt-live-transmit` reports each accepted connection and,
with `-r`, a bandwidth line per N packets: the first one means traffic flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

log = logging.getLogger("mediagate.brokerage.relay")

BINARY = "srt-live-transmit"
Callback = Callable[[], Awaitable[None]]
_PASSPHRASE = re.compile(r"(passphrase\s*[=:]\s*'?)[^&'\s]+")


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host or "0.0.0.0", 0))
        return int(sock.getsockname()[1])


@dataclass
class Relay:
    session: str
    stream: str
    source_port: int
    target_port: int
    process: asyncio.subprocess.Process
    flowing: bool = False
    stopping: bool = False
    watcher: asyncio.Task[None] | None = None
    lines: list[str] = field(default_factory=list)


class RelayManager:
    """The relays this process runs, keyed by (session, stream)."""

    def __init__(self, binary: str = BINARY, report_every: int = 50) -> None:
        self.binary = binary
        self.report_every = report_every
        self._relays: dict[tuple[str, str], Relay] = {}

    @property
    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def get(self, session: str, stream: str) -> Relay | None:
        return self._relays.get((session, stream))

    async def start(self, session: str, stream: str, *, bind_host: str, passphrase: str,
                    pbkeylen: int, latency_ms: int, on_flowing: Callback,
                    on_failed: Callback) -> Relay:
        existing = self._relays.get((session, stream))
        if existing is not None:
            return existing
        source_port, target_port = free_udp_port(bind_host), free_udp_port(bind_host)
        while target_port == source_port:
            target_port = free_udp_port(bind_host)
        query = urlencode({"mode": "listener", "latency": latency_ms,
                           "passphrase": passphrase, "pbkeylen": pbkeylen})
        process = await asyncio.create_subprocess_exec(
            self.binary, f"-r:{self.report_every}",
            f"srt://{bind_host}:{source_port}?{query}",
            f"srt://{bind_host}:{target_port}?{query}",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        relay = Relay(session, stream, source_port, target_port, process)
        self._relays[(session, stream)] = relay
        relay.watcher = asyncio.create_task(self._watch(relay, on_flowing, on_failed))
        log.info("relay for %s/%s on ports %d -> %d (pid %d)", session, stream,
                 source_port, target_port, process.pid)
        return relay

    async def _watch(self, relay: Relay, on_flowing: Callback, on_failed: Callback) -> None:
        assert relay.process.stdout is not None
        while True:
            raw = await relay.process.stdout.readline()
            if not raw:
                break
            line = _PASSPHRASE.sub(r"\1[redacted]", raw.decode(errors="replace").strip())
            relay.lines = [*relay.lines[-20:], line]
            if not relay.flowing and "BANDWIDTH" in line:
                relay.flowing = True
                await _safely(on_flowing)
        code = await relay.process.wait()
        self._relays.pop((relay.session, relay.stream), None)
        if not relay.stopping:
            log.warning("relay for %s/%s exited with %s: %s", relay.session, relay.stream,
                        code, " | ".join(relay.lines[-5:]))
            await _safely(on_failed)

    async def stop(self, session: str, stream: str) -> None:
        relay = self._relays.pop((session, stream), None)
        if relay is None:
            return
        relay.stopping = True
        if relay.process.returncode is None:
            relay.process.terminate()
            try:
                await asyncio.wait_for(relay.process.wait(), 5)
            except TimeoutError:
                relay.process.kill()
                await relay.process.wait()
        if relay.watcher is not None and relay.watcher is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await relay.watcher

    async def stop_session(self, session: str) -> None:
        for key in [key for key in self._relays if key[0] == session]:
            await self.stop(*key)

    async def stop_all(self) -> None:
        for key in list(self._relays):
            await self.stop(*key)

    def count(self) -> int:
        return len(self._relays)


async def _safely(callback: Callback) -> None:
    try:
        await callback()
    except Exception:
        log.exception("relay callback failed")
