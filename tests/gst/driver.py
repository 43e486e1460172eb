"""Drive tests/gst/whip_client.py (GStreamer webrtcbin, run by Debian's Python) from pytest:
start it, follow its JSON lines, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"  # has Debian's python3-gi; the project venv cannot
HELPER = Path(__file__).with_name("whip_client.py")
OFFERS = Path(__file__).with_name("offers")

Event = dict[str, Any]


def offer(name: str) -> str:
    """A captured real offer (tests/gst/offers/<name>.sdp)."""
    return (OFFERS / f"{name}.sdp").read_bytes().decode()


class GstClient:
    """One run of the helper; ``events`` fills as its lines arrive."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[Event] = []
        self.stderr = b""
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, mode: str, url: str, *args: str) -> GstClient:
        process = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, str(HELPER), mode, url, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        errors = asyncio.ensure_future(self.process.stderr.read())
        async for line in self.process.stdout:
            self.events.append(json.loads(line))
        self.stderr = await errors

    def first(self, event: str) -> Event | None:
        return next((e for e in self.events if e["event"] == event), None)

    def all(self, event: str) -> list[Event]:
        return [e for e in self.events if e["event"] == event]

    @property
    def connected(self) -> bool:
        return any(
            e["event"] == "state" and e["name"] == "connection-state"
            and e["state"] == "connected" for e in self.events
        )

    @property
    def failure(self) -> str | None:
        error = self.first("error")
        return error["reason"] if error is not None else None

    def counts(self) -> Event:
        found = self.all("counts")
        return found[-1] if found else {"t": time.monotonic(), "video_frames": 0,
                                        "audio_buffers": 0, "sent_video": 0, "sent_audio": 0}

    def log(self) -> str:
        """What to show when an assertion about this client fails."""
        lines = [json.dumps(e)[:400] for e in self.events if e["event"] != "counts"]
        return "\n".join([*lines, self.stderr.decode(errors="replace")[-3000:]])

    async def wait_for(self, predicate: Callable[[GstClient], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while not predicate(self):
            if self.failure is not None or self._reader.done():
                raise AssertionError(f"GStreamer client ended early:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"GStreamer client: condition not met:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def stop(self, within: float = 20) -> int:
        """Ask the client to end (it DELETEs its session), wait for it to exit."""
        if self.process.returncode is None and self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.process.stdin.write(b"stop\n")
                await self.process.stdin.drain()
                self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self._reader
        return self.process.returncode if self.process.returncode is not None else -1


def rate(samples: list[tuple[float, int]], start: float, end: float) -> float:
    """Units per second between the samples nearest to `start` and `end`."""
    first = min(samples, key=lambda s: abs(s[0] - start))
    last = min(samples, key=lambda s: abs(s[0] - end))
    assert last[0] > first[0], (first, last)
    return (last[1] - first[1]) / (last[0] - first[0])


def client_rate(client: GstClient, key: str, start: float, end: float) -> float:
    return rate([(e["t"], e[key]) for e in client.all("counts")], start, end)
