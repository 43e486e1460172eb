"""Issue 13 follow-up: a destination's `statusReason` (GET .../destinations and the
`destination.status_changed` webhook) carried the exception text of the failed connect, which
told a port scanner what answered: refused, timed out, reset or a failed handshake. Every
failure of a destination, and of a pull source, now reads the same; the detail is logged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from gateway.settings import Settings
from media.restream import DELIVERY_FAILED, SOURCE_FAILED
from tests.security.studio_outbound import closed_port
from tests.studio.conftest import (  # noqa: F401
    StudioClient,
    admin_key,
    settings,
    studio,
    upload_media,
)
from tests.studio.live_helpers import make_clip
from tests.studio.receiver import receiver

SECRET = "reasons-test-secret-" + "3c" * 8
HANDSHAKE = 1 + 1536  # RTMP C0 + C1


@pytest.fixture
def studio_env() -> dict[str, str]:
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8",
            "STUDIO_RESTREAM_CONNECT_TIMEOUT": "2", "STUDIO_RESTREAM_BACKOFF_INITIAL": "0.2",
            "STUDIO_RESTREAM_BACKOFF_MAX": "0.5"}


@contextlib.asynccontextmanager
async def rtmp_probe(behaviour: str) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that, to an RTMP client, is `silent` (accepts, never
    answers), `reset` (reads, then RST) or `hangup` (reads the handshake, then closes)."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if behaviour == "silent":
            held.append(writer)
            return
        with contextlib.suppress(Exception):
            await reader.readexactly(HANDSHAKE if behaviour == "hangup" else 1)
        if behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, family=socket.AF_INET)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()


async def _studio(studio: StudioClient, key: str, source: dict[str, str],  # noqa: F811
                  destinations: dict[str, int]) -> tuple[str, dict[str, str]]:
    """A studio with `source` and one destination per name -> port; (id, name -> dst id)."""
    sid = (await studio.call("POST", "/v1/studios", key=key,
                             json_body={"name": "s"})).json()["id"]
    reply = await studio.call("POST", f"/v1/studios/{sid}/sources", key=key, json_body=source)
    assert reply.status == 201, reply.body
    ids = {}
    for name, port in destinations.items():
        reply = await studio.call("POST", f"/v1/studios/{sid}/destinations", key=key, json_body={
            "name": name, "platform": "custom", "streamKey": "sk_secret_key",
            "rtmpUrl": f"rtmp://127.0.0.1:{port}/live"})
        assert reply.status == 201, reply.body
        ids[name] = reply.json()["id"]
    return sid, ids


async def _all_error(studio: StudioClient, key: str, sid: str,  # noqa: F811
                     within: float = 25) -> dict[str, str]:
    """name -> statusReason once every destination of the studio is in `error`."""
    deadline = time.monotonic() + within
    data: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        data = (await studio.call("GET", f"/v1/studios/{sid}/destinations",
                                  key=key)).json()["data"]
        if all(d["status"] == "error" for d in data):
            return {d["name"]: d.get("statusReason", "") for d in data}
        await asyncio.sleep(0.2)
    raise AssertionError(f"not all in error: {data}")


def _events(hook: Any) -> dict[str, list[dict[str, Any]]]:
    """destination id -> its `destination.status_changed` events' data."""
    found: dict[str, list[dict[str, Any]]] = {}
    for request in list(hook.requests):
        event = json.loads(request.body)
        if event["type"] == "destination.status_changed":
            found.setdefault(event["data"]["destinationId"], []).append(event["data"])
    return found


async def test_every_failure_reads_the_same(
        app: Quart, settings: Settings, studio: StudioClient,  # noqa: F811
        admin_key: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="mediagate.media.restream")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clip = await asyncio.to_thread(make_clip, Path(settings.data_dir) / "clip.mp4", 2, "160x120")
    asset_id = (await upload_media(app, studio, admin_key, clip.read_bytes()))["assetId"]
    with receiver() as hook:
        reply = await studio.call("POST", "/v1/webhooks", key=admin_key, json_body={
            "url": hook.url, "secret": SECRET, "events": ["destination.status_changed"]})
        assert reply.status == 201, reply.body
        async with rtmp_probe("silent") as silent, rtmp_probe("reset") as reset, \
                rtmp_probe("hangup") as hangup:
            ports = {"refused": closed_port().port, "silent": silent, "reset": reset,
                     "hangup": hangup}
            # destinations: the source plays, each destination fails its own way
            sid, ids = await _studio(studio, admin_key, {"name": "clip", "type": "media",
                                                         "url": asset_id}, ports)
            # pull sources: each studio's source fails its own way
            pulls = {}
            for name in ("refused", "silent", "reset"):
                pulls[name] = await _studio(
                    studio, admin_key,
                    {"name": name, "type": "rtmp", "url": f"rtmp://127.0.0.1:{ports[name]}/live/x"},
                    {"out": ports["silent"]})
            for studio_id in [sid] + [p[0] for p in pulls.values()]:
                reply = await studio.call("POST", f"/v1/studios/{studio_id}/go-live",
                                          key=admin_key)
                assert reply.status == 200, reply.body
            try:
                reasons = await _all_error(studio, admin_key, sid)
                await asyncio.sleep(3)  # several reconnects: the reason stays the same
                again = await _all_error(studio, admin_key, sid)
                pulled = {name: (await _all_error(studio, admin_key, pid, 40))["out"]
                          for name, (pid, _) in pulls.items()}
                sources = {name: (await studio.call("GET", f"/v1/studios/{pid}/sources",
                                                    key=admin_key)).json()["data"][0]["status"]
                           for name, (pid, _) in pulls.items()}
                for _ in range(50):  # the event watcher samples once a second
                    if set(ids.values()) <= set(_events(hook)):
                        break
                    await asyncio.sleep(0.2)
            finally:
                for studio_id in [sid] + [p[0] for p in pulls.values()]:
                    await studio.call("POST", f"/v1/studios/{studio_id}/go-offline",
                                      key=admin_key)
    assert reasons == again == dict.fromkeys(ports, DELIVERY_FAILED), (reasons, again)
    assert pulled == dict.fromkeys(pulls, f"source: {SOURCE_FAILED}"), pulled
    assert sources == dict.fromkeys(pulls, "error"), sources
    events = _events(hook)
    for name, destination_id in ids.items():
        errors = [e for e in events.get(destination_id, []) if e["status"] == "error"]
        assert errors, f"no error event for {name}: {events}"
        assert {e.get("statusReason") for e in errors} == {DELIVERY_FAILED}, (name, errors)
    # what told them apart is in the server log, stream keys masked
    logged = caplog.text
    assert "ConnectionRefusedError" in logged and "TimeoutError" in logged, logged[-3000:]
    assert "ConnectionResetError" in logged or "reset" in logged.lower(), logged[-3000:]
    assert "sk_secret_key" not in logged
