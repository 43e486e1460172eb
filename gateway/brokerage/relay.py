"""SRT relay fallback: one supervised `srt-live-transmit` per stream.

The relay listens on two UDP ports (sender side, receiver side) with the session's
passphrase; both peers call it. `srt-live-transmit` reports each accepted connection and
each disconnection, and, with `-r`, a bandwidth line per N packets: the first one means
traffic flows.

A process runs at most `max_relays` relays. `srt-live-transmit` takes the passphrase only
in its URIs (it has no configuration file and reads no environment variable), so it is on
its command line when it starts; as soon as the relay has parsed its arguments (its first
output line) the passphrase is overwritten in the child's argument memory, which is what
`ps` and `/proc/<pid>/cmdline` show, before the relay is handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlencode

from media.detach import detached

log = logging.getLogger("mediagate.brokerage.relay")

BINARY = "srt-live-transmit"
Callback = Callable[[], Awaitable[None]]
_PASSPHRASE = re.compile(r"(passphrase\s*[=:]\s*'?)[^&'\s]+")
_ACCEPTED = re.compile(r"Accepted SRT (source|target) connection")
_DISCONNECTED = re.compile(r"SRT (source|target) disconnected")
FIRST_LINE_TIMEOUT = 5.0


class RelayLimitReached(Exception):
    """This process already runs as many relays as it may (`PUNCH_MAX_RELAYS`)."""


def hide_in_argv(pid: int, secret: str) -> bool:
    """Overwrite `secret` with asterisks in a child process's command line.

    Linux: `/proc/<pid>/stat` fields 48-49 bound the argument strings in the child's
    memory, which a parent may write through `/proc/<pid>/mem` (same user, and what
    Yama's ptrace scope allows for descendants). The child must have copied its arguments
    already. False when the kernel refuses or the secret is not there.
    """
    needles = {secret.encode(), quote_plus(secret).encode()}
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        if not 0 < start < end:
            return False
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            arguments = original = memory.read(end - start)
            for needle in needles:
                arguments = arguments.replace(needle, b"*" * len(needle))
            if arguments == original:
                return False
            memory.seek(start)
            memory.write(arguments)
        return True
    except (OSError, ValueError, IndexError):
        return False


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
    passphrase: str = field(repr=False)
    """Its session's: a later session of the same name has another one."""
    flowing: bool = False
    stopping: bool = False
    watcher: asyncio.Task[None] | None = None
    lines: list[str] = field(default_factory=list)
    connected: set[str] = field(default_factory=set)
    """The sides (`source`, `target`) an SRT caller is connected to, as the relay reports."""
    unused_since: float | None = None


class RelayManager:
    """The relays this process runs, keyed by (session, stream).

    A relay is in use while a peer is connected: a signalling WebSocket registered on its
    stream (the caller tells `unused_too_long`) or an SRT caller connected to either side.
    """

    def __init__(self, binary: str = BINARY, report_every: int = 50, *,
                 max_relays: int = 16, idle_timeout: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.binary = binary
        self.report_every = report_every
        self.max_relays = max_relays
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._relays: dict[tuple[str, str], Relay] = {}
        self._starting = asyncio.Lock()
        self._warned_argv = False

    @property
    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def get(self, session: str, stream: str) -> Relay | None:
        return self._relays.get((session, stream))

    @detached  # the relay's process pipes and watcher outlive the request that starts it
    async def start(self, session: str, stream: str, *, bind_host: str, passphrase: str,
                    pbkeylen: int, latency_ms: int, on_flowing: Callback,
                    on_failed: Callback) -> Relay:
        async with self._starting:  # one at a time: the limit holds under concurrent requests
            existing = self._relays.get((session, stream))
            if existing is not None and existing.passphrase == passphrase:
                return existing
            if existing is not None:  # left by an earlier session of this name
                await self.stop(session, stream)
            if len(self._relays) >= self.max_relays:
                raise RelayLimitReached(f"this gateway already runs its {self.max_relays} "
                                        "relays")
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
            relay = Relay(session, stream, source_port, target_port, process, passphrase)
            self._relays[(session, stream)] = relay
            await self._hide_passphrase(relay, passphrase)
            relay.watcher = asyncio.create_task(self._watch(relay, on_flowing, on_failed))
        log.info("relay for %s/%s on ports %d -> %d (pid %d)", session, stream,
                 source_port, target_port, process.pid)
        return relay

    async def _hide_passphrase(self, relay: Relay, passphrase: str) -> None:
        """Wait for the relay's first line (its arguments are parsed), then hide the
        passphrase from its command line."""
        assert relay.process.stdout is not None
        raw = b""
        with contextlib.suppress(TimeoutError):
            raw = await asyncio.wait_for(relay.process.stdout.readline(), FIRST_LINE_TIMEOUT)
            if raw:
                self._note(relay, raw)
        if relay.process.returncode is not None or not raw:
            return  # it failed to start: the watcher reports it
        if not hide_in_argv(relay.process.pid, passphrase) and not self._warned_argv:
            self._warned_argv = True
            log.warning("could not hide the relay passphrase from the process list: local "
                        "users of this host can read it with ps (see README)")

    def _note(self, relay: Relay, raw: bytes) -> str:
        line = _PASSPHRASE.sub(r"\1[redacted]", raw.decode(errors="replace").strip())
        relay.lines = [*relay.lines[-20:], line]
        if accepted := _ACCEPTED.search(line):
            relay.connected.add(accepted.group(1))
        elif gone := _DISCONNECTED.search(line):
            relay.connected.discard(gone.group(1))
        return line

    async def _watch(self, relay: Relay, on_flowing: Callback, on_failed: Callback) -> None:
        assert relay.process.stdout is not None
        while True:
            raw = await relay.process.stdout.readline()
            if not raw:
                break
            line = self._note(relay, raw)
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

    def all(self) -> list[Relay]:
        return list(self._relays.values())

    def unused_too_long(self, relay: Relay, *, signalling: bool) -> bool:
        """Note whether `relay` has a connected peer now (`signalling`: a WebSocket is
        registered on its stream); True once it has had none for `idle_timeout`."""
        if signalling or relay.connected:
            relay.unused_since = None
            return False
        now = self.clock()
        if relay.unused_since is None:
            relay.unused_since = now
        return now - relay.unused_since >= self.idle_timeout


async def _safely(callback: Callback) -> None:
    try:
        await callback()
    except Exception:
        log.exception("relay callback failed")
