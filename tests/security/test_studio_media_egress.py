"""Issue 13, finding 2: Studio's pull sources and RTMP destinations pass the egress guard.

At create/update time an internal address is 400 `invalid_request` naming
MEDIAGATE_EGRESS_ALLOW; at connect time (every connect and reconnect, in the media core's
threads) the URL is checked again and pinned to the checked address, and a refusal shows as
`error` with a generic reason and no connection is ever made.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from quart import Quart

from gateway.state import EXTENSION
from gateway.studio import apikeys
from tests.studio.conftest import (  # noqa: F401
    StudioClient,
    make_key,
    settings,
    studio,
    upload_media,
)
from tests.studio.media_files import mp4_bytes

HOSTS = ["127.0.0.1", "0x7f000001", "[::1]", "169.254.169.254"]


def _vectors(host: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """vector -> (collection path under the studio, field, body) for one internal host."""
    return {
        "rtmp source": ("sources", "url", {"name": "s", "type": "rtmp",
                                           "url": f"rtmp://{host}/live/x"}),
        "srt source": ("sources", "url", {"name": "s", "type": "srt",
                                          "url": f"srt://{host}:9000?mode=caller"}),
        "rtmp destination": ("destinations", "rtmpUrl", {
            "name": "d", "platform": "custom", "rtmpUrl": f"rtmp://{host}/live",
            "streamKey": "k"}),
    }


class TestDefaultPolicy:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0"}  # no MEDIAGATE_EGRESS_ALLOW: the default

    @pytest.mark.parametrize("host", HOSTS)
    @pytest.mark.parametrize("vector", ["rtmp source", "srt source", "rtmp destination"])
    async def test_internal_addresses_are_refused_on_create_and_update(
            self, app: Quart, studio: StudioClient, host: str, vector: str,  # noqa: F811
    ) -> None:
        key = await make_key(app, "alice", apikeys.ALL_SCOPES)
        sid = (await studio.call("POST", "/v1/studios", key=key,
                                 json_body={"name": "s"})).json()["id"]
        collection, field, body = _vectors(host)[vector]
        reply = await studio.call("POST", f"/v1/studios/{sid}/{collection}", key=key,
                                  json_body=body)
        assert reply.status == 400, reply.body
        error = reply.json()["error"]
        assert error["code"] == "invalid_request" and "MEDIAGATE_EGRESS_ALLOW" in error["message"]
        # An existing resource cannot be pointed there either.
        fine = dict(body, **{field: body[field].replace(host, "8.8.8.8")})
        created = await studio.call("POST", f"/v1/studios/{sid}/{collection}", key=key,
                                    json_body=fine)
        assert created.status == 201, created.body
        patched = await studio.call(
            "PATCH", f"/v1/studios/{sid}/{collection}/{created.json()['id']}", key=key,
            json_body={field: body[field]})
        assert patched.status == 400, patched.body
        assert "MEDIAGATE_EGRESS_ALLOW" in patched.json()["error"]["message"]
        listed = (await studio.call("GET", f"/v1/studios/{sid}/{collection}", key=key)).json()
        assert [item.get(field) for item in listed["data"]] == [fine[field]]

    @pytest.mark.parametrize("host", HOSTS)
    async def test_manual_connections_to_internal_addresses_are_refused(
            self, app: Quart, studio: StudioClient, host: str,  # noqa: F811
    ) -> None:
        key = await make_key(app, "alice", apikeys.ALL_SCOPES)
        reply = await studio.call("POST", "/v1/connections", key=key, json_body={
            "connectionType": "manual", "platform": "custom", "displayName": "x",
            "rtmpUrl": f"rtmp://{host}/live", "streamKey": "k"})
        assert reply.status == 400, reply.body
        assert "MEDIAGATE_EGRESS_ALLOW" in reply.json()["error"]["message"]


class Listener:
    """Counts every connection (TCP) or datagram (UDP) that reaches a loopback address."""

    def __init__(self, host: str, kind: int = socket.SOCK_STREAM) -> None:
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.hits = 0
        self.sock.settimeout(0.2)
        if kind == socket.SOCK_STREAM:
            self.sock.listen(16)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(kind,), daemon=True)
        self._thread.start()

    def _run(self, kind: int) -> None:
        while not self._stop.is_set():
            try:
                if kind == socket.SOCK_STREAM:
                    conn, _ = self.sock.accept()
                    conn.close()
                else:
                    self.sock.recv(2048)
                self.hits += 1
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


GENERIC_REASON_LEAKS = ("MEDIAGATE_EGRESS_ALLOW", "127.0.0.2", "resolve", "private")


class TestConnectTime:
    """Created while 127.0.0.0/8 was allowed; the operator then narrows the allow-list to
    127.0.0.1 (as a name that now resolves elsewhere would): connect time checks again."""

    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8",
                "STUDIO_RESTREAM_BACKOFF_INITIAL": "0.2", "STUDIO_RESTREAM_BACKOFF_MAX": "0.5"}

    @staticmethod
    def _narrow(app: Quart) -> None:
        app.extensions[EXTENSION].egress.allow = (ipaddress.ip_network("127.0.0.1/32"),)

    @staticmethod
    async def _media_source(app: Quart, studio: StudioClient, key: str,  # noqa: F811
                            sid: str) -> None:
        upload = await upload_media(app, studio, key, mp4_bytes(frames=30))
        reply = await studio.call("POST", f"/v1/studios/{sid}/sources", key=key, json_body={
            "name": "clip", "type": "media", "url": upload["assetId"]})
        assert reply.status == 201, reply.body

    @staticmethod
    async def _destination(studio: StudioClient, key: str, sid: str,  # noqa: F811
                           name: str, listener: Listener) -> None:
        reply = await studio.call("POST", f"/v1/studios/{sid}/destinations", key=key, json_body={
            "name": name, "platform": "custom", "streamKey": "k",
            "rtmpUrl": f"rtmp://{listener.host}:{listener.port}/live"})
        assert reply.status == 201, reply.body

    @staticmethod
    async def _wait_error(studio: StudioClient, key: str, sid: str,  # noqa: F811
                          name: str) -> str:
        deadline = time.monotonic() + 20
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            data = (await studio.call("GET", f"/v1/studios/{sid}/destinations",
                                      key=key)).json()["data"]
            seen = next(d for d in data if d["name"] == name)
            if seen.get("status") == "error":
                return str(seen.get("statusReason", ""))
            await asyncio.sleep(0.2)
        raise AssertionError(f"{name} never became error: {seen}")

    async def test_a_destination_connects_only_to_a_checked_address(
            self, app: Quart, studio: StudioClient, listeners: list[Listener],  # noqa: F811
    ) -> None:
        key = await make_key(app, "alice", apikeys.ALL_SCOPES)
        sid = (await studio.call("POST", "/v1/studios", key=key,
                                 json_body={"name": "s"})).json()["id"]
        await self._media_source(app, studio, key, sid)
        allowed, refused = Listener("127.0.0.1"), Listener("127.0.0.2")
        listeners += [allowed, refused]
        await self._destination(studio, key, sid, "allowed", allowed)
        await self._destination(studio, key, sid, "refused", refused)
        self._narrow(app)
        assert (await studio.call("POST", f"/v1/studios/{sid}/go-live", key=key)).status == 200
        try:
            reason = await self._wait_error(studio, key, sid, "refused")
            await self._wait_error(studio, key, sid, "allowed")  # a listener is no RTMP server
            await asyncio.sleep(1.5)  # several reconnects of both
        finally:
            await studio.call("POST", f"/v1/studios/{sid}/go-offline", key=key)
        assert allowed.hits >= 2, "the allowed destination never (re)connected"
        assert refused.hits == 0, "the gateway connected to a refused address"
        assert not any(leak in reason for leak in GENERIC_REASON_LEAKS), reason

    @pytest.mark.parametrize("kind", ["rtmp", "srt"])
    async def test_a_pull_source_connects_only_to_a_checked_address(
            self, app: Quart, studio: StudioClient, listeners: list[Listener],  # noqa: F811
            kind: str,
    ) -> None:
        key = await make_key(app, "alice", apikeys.ALL_SCOPES)
        sid = (await studio.call("POST", "/v1/studios", key=key,
                                 json_body={"name": "s"})).json()["id"]
        source = Listener("127.0.0.2", socket.SOCK_STREAM if kind == "rtmp" else socket.SOCK_DGRAM)
        sink = Listener("127.0.0.1")
        listeners += [source, sink]
        url = (f"rtmp://{source.host}:{source.port}/live/x" if kind == "rtmp"
               else f"srt://{source.host}:{source.port}?mode=caller")
        reply = await studio.call("POST", f"/v1/studios/{sid}/sources", key=key,
                                  json_body={"name": "pull", "type": kind, "url": url})
        assert reply.status == 201, reply.body
        await self._destination(studio, key, sid, "out", sink)
        self._narrow(app)
        assert (await studio.call("POST", f"/v1/studios/{sid}/go-live", key=key)).status == 200
        try:
            reason = await self._wait_error(studio, key, sid, "out")
            await asyncio.sleep(1.5)  # several reconnect attempts of the source
            sources = (await studio.call("GET", f"/v1/studios/{sid}/sources", key=key)).json()
        finally:
            await studio.call("POST", f"/v1/studios/{sid}/go-offline", key=key)
        assert source.hits == 0, "the gateway connected to a refused source address"
        assert reason.startswith("source:"), reason
        assert not any(leak in reason for leak in GENERIC_REASON_LEAKS), reason
        assert sources["data"][0]["status"] == "error"
