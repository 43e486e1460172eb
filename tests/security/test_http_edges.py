"""The shared HTTP machinery at its edges (finding 7 of issue 13), on the real server: WebSocket
upgrades on plain paths, over-long path segments, oversized bodies over a real socket and
malformed JSON bodies each get the owning API's own 4xx, and the log stays clean."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.host.conftest import TOKEN as HOST_TOKEN
from tests.security.rawhttp import RawReply, exchange
from tests.server import RunningServer, start_server

WEBSOCKET_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
HOST_AUTH = {"Authorization": f"Bearer {HOST_TOKEN}"}


def _is_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)


SHAPES: dict[str, Callable[[object], bool]] = {
    "brokerage": lambda b: isinstance(b, dict) and set(b) == {"error", "message"}
    and _is_str(b["error"]) and _is_str(b["message"]),
    "host": lambda b: isinstance(b, dict) and set(b) == {"error"} and _is_str(b["error"]),
    "live": lambda b: isinstance(b, dict) and set(b) == {"error"} and _is_str(b["error"]),
    "calls": lambda b: isinstance(b, dict) and set(b) == {"errorCode", "errorDescription"},
    "studio": lambda b: isinstance(b, dict) and set(b) == {"error"}
    and isinstance(b["error"], dict) and {"code", "message", "requestId"} <= set(b["error"]),
    "none": lambda b: isinstance(b, dict) and set(b) == {"error"} and _is_str(b["error"]),
}

# Plain (non-WebSocket) GET paths of every API, and paths no API owns.
PLAIN_PATHS = [
    ("brokerage", "/api/health"),
    ("brokerage", "/api/session/some-session"),
    ("brokerage", "/s/some-session"),
    ("host", "/api/v1/health"),
    ("host", "/api/v1/status"),
    ("live", "/healthz"),
    ("live", "/metrics"),
    ("live", "/api/rooms"),
    ("live", "/api/records"),
    ("live", "/web/index.html"),
    ("calls", "/v1/apps/some-app/sessions/some-session"),
    ("calls", "/apps/some-app/sessions/some-session"),
    ("studio", "/v1/health"),
    ("studio", "/v1/studios"),
    ("none", "/readyz"),
    ("none", "/openapi/live.json"),
    ("none", "/nothing-here"),
]
LONG = "a" * 5000


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("edges")
    server = start_server(base / "data", env={
        "PUNKTFUNK_MGMT_TOKEN": HOST_TOKEN,
        "RECORD_ENABLED": "1",
        "RECORD_DIR": str(base / "records"),
        "RATE_LIMIT_RPS": "0",
    })
    yield server
    assert server.stop() == 0, server.log()[-3000:]


def _log_since(server: RunningServer, mark: int) -> str:
    return server.log()[mark:]


def _assert_clean(log: str) -> None:
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log and "CRITICAL" not in log, log[-5000:]


def _json(reply: RawReply) -> object:
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    return json.loads(reply.body)


@pytest.mark.parametrize(("api", "path"), PLAIN_PATHS)
def test_websocket_upgrade_on_a_plain_path_is_a_4xx_in_the_apis_shape(
        edge_server: RunningServer, api: str, path: str) -> None:
    mark = len(edge_server.log())
    reply = exchange(edge_server.base_url, "GET", path, WEBSOCKET_UPGRADE, timeout=15)
    assert reply.status is not None and 400 <= reply.status < 500, reply
    assert SHAPES[api](_json(reply)), reply.body
    _assert_clean(_log_since(edge_server, mark))


def test_websocket_route_still_upgrades(edge_server: RunningServer) -> None:
    """The Punch signalling socket is a real WebSocket route: no HTTP error there."""
    reply = exchange(edge_server.base_url, "GET", "/api/ws/nothing", WEBSOCKET_UPGRADE,
                     timeout=15)
    assert reply.status in (101, 401, 403, 404), reply


def test_a_5000_character_web_name_is_a_404_and_not_logged_whole(
        edge_server: RunningServer) -> None:
    mark = len(edge_server.log())
    response = httpx.get(f"{edge_server.base_url}/web/{LONG}", timeout=15)
    assert response.status_code in (400, 404), response.text
    assert SHAPES["live"](response.json())
    log = _log_since(edge_server, mark)
    _assert_clean(log)
    leaked = "a" * 1000 in log
    assert not leaked, "the whole name is in the server log"


@pytest.mark.parametrize(("api", "path"), [
    ("live", f"/records/{LONG}.ivf"),
    ("live", f"/api/whip/publish/{LONG}"),
    ("brokerage", f"/api/session/{LONG}"),
    ("brokerage", f"/s/{LONG}"),
    ("host", f"/api/v1/stats/recordings/{LONG}"),
    ("calls", f"/v1/apps/{LONG}/sessions/x"),
    ("studio", f"/v1/studios/{LONG}"),
    ("none", f"/{LONG}"),
])
def test_over_long_path_segments_are_a_4xx_everywhere(
        edge_server: RunningServer, api: str, path: str) -> None:
    mark = len(edge_server.log())
    response = httpx.get(edge_server.base_url + path, headers=HOST_AUTH, timeout=15)
    assert 400 <= response.status_code < 500, response.text
    assert SHAPES[api](response.json()), response.text
    log = _log_since(edge_server, mark)
    _assert_clean(log)
    leaked = "a" * 1000 in log
    assert not leaked, "the whole name is in the server log"


BIG = 5_000_000
OVERSIZED = [
    ("live", "/api/whip/publish/room1", "application/sdp"),
    ("host", "/api/v1/library/custom", "application/json"),
    ("brokerage", "/api/session", "application/json"),
    ("calls", "/v1/apps/some-app/sessions/new", "application/json"),
    ("studio", "/v1/studios", "application/json"),
]


def test_too_large_bodies_always_get_the_413_never_a_reset(edge_server: RunningServer) -> None:
    """Several clients at once each send 5 MB: every one sends it all and reads the 413."""
    mark = len(edge_server.log())
    jobs = [(api, path, kind) for api, path, kind in OVERSIZED for _ in range(4)]

    def send(job: tuple[str, str, str]) -> tuple[str, RawReply]:
        api, path, kind = job
        return api, exchange(edge_server.base_url, "POST", path,
                             {"Content-Type": kind, **HOST_AUTH}, BIG, timeout=60)

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    failures = [(api, r.status, r.send_error, r.recv_error) for api, r in results
                if r.status != 413 or r.reset]
    assert not failures, failures
    for api, reply in results:
        assert SHAPES[api](_json(reply)), (api, reply.body)
    _assert_clean(_log_since(edge_server, mark))


def test_too_large_chunked_body_gets_the_413(edge_server: RunningServer) -> None:
    """Without a Content-Length the limit trips mid-body; the rest is still read."""
    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b"x" * 65536

    response = httpx.post(f"{edge_server.base_url}/api/whip/publish/room1", content=chunks(),
                          headers={"Content-Type": "application/sdp"}, timeout=60)
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large"}


# -- malformed JSON bodies on every host write route -----------------------------------------

HOST_WRITES = [
    ("POST", "/api/v1/pair/pin"),
    ("POST", "/api/v1/native/pair/arm"),
    ("POST", "/api/v1/native/pending/1/approve"),
    ("POST", "/api/v1/library/custom"),
    ("PUT", "/api/v1/library/custom/0123456789abcdef"),
]
MALFORMED = {
    "bad utf-8": b'{"title": "\xff\xfe"}',
    "bad json": b'{"title": ',
    "deep nesting": b"[" * 100_000,
    "lone surrogate": b'{"title": "\\ud800", "pin": "\\udfff", "name": "\\ud800x"}',
    "nan": b'{"title": NaN, "ttl_secs": NaN, "pin": NaN, "name": NaN}',
    "wrong type": b'["title"]',
    "wrong field type": b'{"title": 5, "pin": 5, "ttl_secs": "5", "name": 5}',
    "bom": b'\xef\xbb\xbf{"title": "x"}',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_json_bodies_are_a_4xx_on_every_host_write_route(
        edge_server: RunningServer, case: str) -> None:
    mark = len(edge_server.log())
    with httpx.Client(base_url=edge_server.base_url, timeout=30,
                      headers={**HOST_AUTH, "Content-Type": "application/json"}) as http:
        for method, path in HOST_WRITES:
            response = http.request(method, path, content=MALFORMED[case])
            assert response.status_code in (400, 422), (method, path, response.text)
            assert SHAPES["host"](response.json()), response.text
    _assert_clean(_log_since(edge_server, mark))


def test_rawhttp_sees_the_reply(tmp_path: Path, edge_server: RunningServer) -> None:
    """The socket helper itself: a plain request reads a whole, unreset reply."""
    reply = exchange(edge_server.base_url, "GET", "/healthz")
    assert reply.status == 200 and reply.body.startswith(b"ok") and not reply.reset
