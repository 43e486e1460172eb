"""Hostile input to Punch over the wire (findings 7, 8 and 12 of issue 13).

* A request body that is not UTF-8, not JSON or of the wrong types gets Punch's own 400
  (`{"error": "INVALID_MESSAGE", "message"}`), never a 500.
* An oversized signalling message closes the WebSocket (1009) before the server buffers it.
* What Punch refuses as a bad request, its OpenAPI document refuses too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import websockets
from jsonschema import Draft202012Validator

from gateway.brokerage.signalling import MAX_MESSAGE_BYTES
from gateway.specs import SpecStore
from tests.brokerage.helpers import Api, Peer, api_for, serve_punch
from tests.fuzz import run_schemathesis
from tests.server import RunningServer

_names = itertools.count()
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def punch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from serve_punch(tmp_path_factory.mktemp("punch-input"))


@pytest.fixture
def api(punch: RunningServer) -> Iterator[Api]:
    yield from api_for(punch)


BAD_BODIES = [
    pytest.param(b'\xff\xfe{"name": "x"}', id="utf16-bom"),
    pytest.param(b'{"name": "caf\xe9"}', id="latin1-in-a-string"),
    pytest.param(b'"\xc3\x28"', id="bad-continuation-byte"),
    pytest.param(b"\xed\xa0\x80", id="utf8-surrogate"),
    pytest.param(b"", id="empty"),
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b'{"name": "x",}', id="trailing-comma"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
    pytest.param(b"null", id="null"),
    pytest.param(b'"name"', id="string"),
    pytest.param(b'[{"name": "x"}]', id="array"),
    pytest.param(b'{"name": 7}', id="name-number"),
    pytest.param(b'{"name": ["x"]}', id="name-array"),
    pytest.param(b'{"name": "x", "streams": [1, 2]}', id="streams-numbers"),
    pytest.param(b'{"name": "x", "streams": {"a": 1}}', id="streams-object"),
    pytest.param(b'{"name": "x", "latency": 200.5}', id="latency-float"),
    pytest.param(b'{"name": "x", "latency": NaN}', id="latency-nan"),
    pytest.param(b'{"name": "x", "ttl": 1e400}', id="ttl-infinite"),
    pytest.param(b'{"name": "x", "ttl": null}', id="ttl-null"),
    pytest.param(b'{"name": "x", "turnstileToken": 5}', id="turnstile-number"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_bad_session_bodies_get_punchs_400(api: Api, body: bytes, content_type: str) -> None:
    response = api.request("POST", "/api/session", content=body,
                           headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    reply = response.json()
    assert reply["error"] == "INVALID_MESSAGE" and set(reply) == {"error", "message"}
    assert reply["message"] and "Error" not in reply["message"], reply


def test_a_valid_body_in_utf8_still_creates(api: Api) -> None:
    name = f"utf8-{next(_names)}"
    body = json.dumps({"name": name, "streams": ["cam-1"], "ttl": 600.0, "latency": 1.2e2},
                      ensure_ascii=False).encode()
    response = api.request("POST", "/api/session", content=body,
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201, response.text
    # an integral JSON number is an integer (as in JSON Schema), and answered as one
    created = response.json()
    assert (created["ttl"], created["latency"]) == (600, 120)
    assert isinstance(created["ttl"], int) and isinstance(created["latency"], int)


def test_duplicate_stream_names_are_refused_as_the_spec_says(api: Api) -> None:
    """Strict validation stays; the document says so (`uniqueItems`), so a client that
    validates against the spec never sees a 400 for a body the spec allows."""
    document = SpecStore().get("brokerage")
    schema = document["components"]["schemas"]["CreateSessionRequest"]
    validator = Draft202012Validator(schema)
    body = {"name": f"dup-{next(_names)}", "streams": ["cam", "cam"]}
    response = api.request("POST", "/api/session", json=body)
    assert response.status_code == 400 and response.json()["error"] == "INVALID_MESSAGE"
    assert list(validator.iter_errors(body)), "the spec accepts a body Punch refuses"
    unique = {"name": f"dup-{next(_names)}", "streams": ["cam", "cam2"]}
    assert not list(validator.iter_errors(unique))
    assert api.request("POST", "/api/session", json=unique).status_code == 201
    # the 400 is a documented answer of the operation
    assert "400" in document["paths"]["/api/session"]["post"]["responses"]


def test_session_creation_accepts_what_the_spec_allows_and_refuses_the_rest(
        punch: RunningServer, tmp_path: Path) -> None:
    """Schemathesis, valid and invalid bodies: no 5xx, no contract violation, no 400 for a
    body the spec allows (it found duplicate stream names and `"ttl": 347.0`, a JSON
    Schema integer), no 2xx for one it forbids."""
    result = run_schemathesis(
        "brokerage", punch.base_url, path_regex=r"^/api/session$",
        max_examples=100, extra=["--mode", "all"], workdir=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No operations" not in output and "generated" in output, output


class RssSampler:
    """The server's resident set size, sampled every few milliseconds in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(0.002)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_an_oversized_message_closes_the_socket_before_it_is_buffered(
        api: Api, punch: RunningServer, compression: str | None) -> None:
    """Sent plain, or offering permessage-deflate (8 MiB of one letter deflates to 8 KiB:
    a server inflating it whole has buffered 8 MiB before any size check)."""
    created = api.create(f"big-{next(_names)}")
    name, admin = created["session"], created["token"]
    # warm up: the first socket and message allocate what every later one reuses
    warm = await Peer.connect(api.base_url, name, admin)
    await warm.expect("state")
    await warm.send({"type": "register", "port": 5000})
    await warm.expect("registered")
    await warm.close()

    url = api.base_url.replace("http://", "ws://") + f"/api/ws/{name}?t={admin}"
    peer = Peer(await websockets.connect(url, compression=compression, open_timeout=10))
    await peer.expect("state")
    big = json.dumps({"type": "health", "status": "healthy", "pad": "x" * (8 * MiB)})
    baseline = psutil.Process(punch.process.pid).memory_info().rss
    with RssSampler(punch.process.pid) as rss:
        with pytest.raises(websockets.ConnectionClosed):
            await peer.ws.send(big)
            await asyncio.wait_for(peer.ws.recv(), 10)
        await asyncio.sleep(0.3)
    assert peer.ws.close_code == 1009, (peer.ws.close_code, peer.ws.close_reason)
    grew = rss.peak - baseline
    assert grew < 4 * MiB, f"the server's RSS grew by {grew / MiB:.1f} MiB"

    # just over the limit closes too; a message within it is still read (and answered)
    over = await Peer.connect(api.base_url, name, admin)
    await over.expect("state")
    with pytest.raises(websockets.ConnectionClosed):
        await over.send_raw("x" * (MAX_MESSAGE_BYTES + 1))
        await asyncio.wait_for(over.ws.recv(), 10)
    assert over.ws.close_code == 1009
    normal = await Peer.connect(api.base_url, name, admin)
    try:
        await normal.expect("state")
        await normal.send_raw(json.dumps({"type": "ready", "pad": "x" * (32 * 1024)}))
        assert (await normal.expect("error"))["error"] == "INVALID_MESSAGE"  # not registered
        await normal.send({"type": "register", "port": 5002})
        assert (await normal.expect("registered"))["peer"] == "a"
    finally:
        await normal.close()

