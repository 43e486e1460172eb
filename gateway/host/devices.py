"""The device-facing server: what Moonlight and native devices talk to (not operators).

Its own small asyncio HTTP/1.1 server, on the GameStream ports:

- HTTP (`MEDIAGATE_GAMESTREAM_HTTP_PORT`, 47989): nvhttp `/serverinfo` and `/pair`, plus the
  native device endpoints `POST /punktfunk/v1/pair/start`, `POST /punktfunk/v1/pair/finish`
  (the SPAKE2 ceremony, see `native.py`) and `POST /punktfunk/v1/knock` `{name,
  fingerprint}` (an unpaired device asks to be let in: 403 and it appears in
  `GET /api/v1/native/pending`; 200 once paired).
- HTTPS (`MEDIAGATE_GAMESTREAM_HTTPS_PORT`, 47984): mutual TLS with the host certificate.
  Only pinned client certificates complete the handshake (the trust store is rebuilt from
  the database for every connection), so unpairing takes effect on the next connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization

from gateway.host import hostinfo
from gateway.host.gamestream import GameStreamPairing, fingerprint_of, xml
from gateway.host.native import NativePairing, PairingClosed, PairingFailed, UnknownCeremony
from gateway.jsonbody import parse_json
from gateway.ratelimit import TokenBucketLimiter
from gateway.settings import Settings

log = logging.getLogger("mediagate.host")

MAX_HEADER_LINES = 64
MAX_LINE = 16384
MAX_BODY = 64 * 1024
READ_TIMEOUT = 30.0
FINGERPRINT = re.compile(r"[0-9a-f]{64}")

Reply = tuple[int, str, bytes]


class BadRequest(Exception):
    pass


def _json(status: int, body: object) -> Reply:
    return status, "application/json", json.dumps(body).encode()


def _xml(body: str) -> Reply:
    return 200, "application/xml", body.encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("bad request line")
    length = 0
    for _ in range(MAX_HEADER_LINES):
        header = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        if len(header) > MAX_LINE:
            raise BadRequest("header too long")
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            if not value.strip().isdigit():
                raise BadRequest("bad content-length")
            length = int(value.strip())
    else:
        raise BadRequest("too many headers")
    if length > MAX_BODY:
        raise BadRequest("body too large")
    body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT) if length else b""
    return parts[0].upper(), parts[1], body


class DeviceServer:
    def __init__(self, settings: Settings, *, uniqueid: str, pairing: GameStreamPairing,
                 native: NativePairing, store: Any, codecs: list[str]) -> None:
        self.settings = settings
        self.uniqueid = uniqueid
        self.pairing = pairing
        self.native = native
        self.store = store
        self.codecs = codecs
        self.host = settings.bind_host_port[0] or "0.0.0.0"
        self._servers: list[asyncio.Server] = []
        # native device endpoints cost EC math and rows: a few per second per address
        self._limiter = TokenBucketLimiter(rate=2.0, burst=20)
        self._connections: set[asyncio.Task[Any]] = set()
        self._tls_cache: tuple[tuple[str, ...], ssl.SSLContext] | None = None
        self._keydir = tempfile.TemporaryDirectory(prefix="mediagate-gs-")
        identity = pairing.identity
        self._cert_file = Path(self._keydir.name) / "cert.pem"
        self._key_file = Path(self._keydir.name) / "key.pem"
        self._cert_file.write_bytes(identity.cert_pem)
        self._key_file.write_bytes(identity.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self._key_file.chmod(0o600)

    async def start(self) -> None:
        http = await asyncio.start_server(self._track(self._serve_http), self.host,
                                          self.settings.gamestream_http_port)
        loop = asyncio.get_running_loop()
        https = await loop.create_server(lambda: _TlsLater(self), self.host,
                                         self.settings.gamestream_https_port)
        self._servers = [http, https]
        log.info("gamestream device server on %s:%d (http) and :%d (https)", self.host,
                 self.settings.gamestream_http_port, self.settings.gamestream_https_port)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        self._keydir.cleanup()

    def _track(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                       Awaitable[None]]
               ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
                pass
            except Exception:
                log.exception("device server: request failed")
            finally:
                self._connections.discard(task)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        return run

    # -- TLS ------------------------------------------------------------------------------

    async def _tls_context(self) -> ssl.SSLContext:
        rows = await self.store.paired_clients()
        key = tuple(sorted(row.fingerprint for row in rows))
        if self._tls_cache is not None and self._tls_cache[0] == key:
            return self._tls_cache[1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._cert_file, self._key_file)
        context.verify_mode = ssl.CERT_REQUIRED
        if rows:
            context.load_verify_locations(cadata="".join(row.cert_pem for row in rows))
        self._tls_cache = (key, context)
        return context

    # -- serving --------------------------------------------------------------------------

    async def _respond(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        status, content_type, body = reply
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                  404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                  429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()

    async def _serve_http(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
        except BadRequest as exc:
            await self._respond(writer, _json(400, {"error": str(exc)}))
            return
        if request is not None:
            await self._respond(writer, await self._dispatch(
                *request, client_der=None, peer_ip=_peer_ip(writer)))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        """TLS with the trust store of this moment, then serve; reading stays paused until
        the handshake so no byte of the ClientHello is lost."""
        loop = asyncio.get_running_loop()
        try:
            context = await self._tls_context()
            reader = asyncio.StreamReader(limit=MAX_LINE)
            protocol = asyncio.StreamReaderProtocol(reader)
            tls = await asyncio.wait_for(
                loop.start_tls(transport, protocol, context, server_side=True), READ_TIMEOUT)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            transport.close()
            return
        except Exception:
            log.exception("device server: TLS setup failed")
            transport.close()
            return
        if tls is None:
            transport.close()
            return
        protocol.connection_made(tls)
        writer = asyncio.StreamWriter(tls, protocol, reader, loop)
        await self._track(self._serve_https)(reader, writer)

    async def _serve_https(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        try:
            request = await _read_request(reader)
        except BadRequest as exc:
            await self._respond(writer, _json(400, {"error": str(exc)}))
            return
        if request is None:
            return
        if der is None or await self.store.paired_client(fingerprint_of(der)) is None:
            await self._respond(writer, _xml(xml(401, "The client is not authorized")))
            return
        await self._respond(writer, await self._dispatch(
            *request, client_der=der, peer_ip=_peer_ip(writer)))

    async def _dispatch(self, method: str, target: str, body: bytes,
                        client_der: bytes | None, peer_ip: str = "") -> Reply:
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        path = url.path.rstrip("/") or "/"
        if path == "/serverinfo" and method == "GET":
            return _xml(self._serverinfo(paired=client_der is not None))
        if path == "/pair" and method == "GET":
            if client_der is not None:
                if params.get("phrase") == "pairchallenge":
                    return _xml(xml(paired=1))
                return _xml(xml(400, "unknown pairing phrase", paired=0))
            return _xml(await self.pairing.pair(params))
        if path == "/unpair" and method == "GET":
            return _xml(xml())
        if path.startswith("/punktfunk/v1/"):
            if method != "POST":
                return _json(405, {"error": "method not allowed"})
            if not self._limiter.hit_now(peer_ip).allowed:
                return _json(429, {"error": "too many requests"})
            return await self._native(path.removeprefix("/punktfunk/v1/"), body)
        return _json(404, {"error": "not found"})

    def _serverinfo(self, paired: bool) -> str:
        modes = 0x1 | (0x100 if "h265" in self.codecs else 0) | (
            0x10000 if "av1" in self.codecs else 0)
        return xml(
            hostname=hostinfo.hostname(),
            appversion=hostinfo.APP_VERSION,
            GfeVersion=hostinfo.GFE_VERSION,
            uniqueid=self.uniqueid,
            HttpsPort=self.settings.gamestream_https_port,
            ExternalPort=self.settings.gamestream_http_port,
            MaxLumaPixelsHEVC=1869449984 if "h265" in self.codecs else 0,
            mac="00:00:00:00:00:00",
            LocalIP=hostinfo.local_ip(self.settings),
            ServerCodecModeSupport=modes,
            PairStatus=1 if paired else 0,
            currentgame=0,
            state="SUNSHINE_SERVER_FREE",
        )

    # -- native devices -------------------------------------------------------------------

    async def _native(self, action: str, raw: bytes) -> Reply:
        if not self.native.enabled:
            return _json(503, {"error": "native host not enabled"})
        try:
            body = parse_json(raw)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return _json(400, {"error": "expected a JSON object"})
        try:
            if action == "knock":
                return await self._knock(body)
            if action == "pair/start":
                name, fingerprint = _identity(body)
                message = _b64(body.get("spake2"))
                ceremony, outbound = await self.native.start(name, fingerprint, message)
                return _json(200, {"ceremony": ceremony,
                                   "spake2": base64.b64encode(outbound).decode()})
            if action == "pair/finish":
                ceremony_id = body.get("ceremony")
                if not isinstance(ceremony_id, str):
                    raise BadRequest("ceremony: expected a string")
                client, confirm = await self.native.finish(ceremony_id, _b64(body.get("confirm")))
                return _json(200, {"fingerprint": client.fingerprint, "name": client.name,
                                   "confirm": base64.b64encode(confirm).decode()})
        except BadRequest as exc:
            return _json(400, {"error": str(exc)})
        except PairingClosed:
            return _json(409, {"error": "pairing is not armed"})
        except UnknownCeremony:
            return _json(404, {"error": "no such pairing ceremony (expired?)"})
        except PairingFailed:
            return _json(403, {"error": "pairing failed"})
        return _json(404, {"error": "not found"})

    async def _knock(self, body: dict[str, Any]) -> Reply:
        name, fingerprint = _identity(body)
        client = await self.store.native_client(fingerprint)
        if client is not None:
            return _json(200, {"paired": True, "name": client.name})
        device = await self.store.knock(fingerprint, name)
        return _json(403, {"paired": False, "pending_id": device.id,
                           "error": "pairing required"})


def _peer_ip(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _identity(body: dict[str, Any]) -> tuple[str, str]:
    fingerprint, name = body.get("fingerprint"), body.get("name")
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint.lower()):
        raise BadRequest("fingerprint: expected 64 hex characters")
    fingerprint = fingerprint.lower()
    if name is None or (isinstance(name, str) and not name.strip()):
        name = f"device {fingerprint[:8]}"
    if not isinstance(name, str) or len(name) > 128:
        raise BadRequest("name: expected a string of at most 128 characters")
    return name.strip(), fingerprint


def _b64(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) > 4096:
        raise BadRequest("expected base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("expected base64") from None


class _TlsLater(asyncio.Protocol):
    """Accepts a TCP connection, pauses it and hands it to the server for TLS."""

    def __init__(self, server: DeviceServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self.server._upgrade(transport))
        self.server._connections.add(task)
        task.add_done_callback(self.server._connections.discard)
