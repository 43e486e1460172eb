"""Punch relays are bounded and end with their use (finding 4 of issue 13).

Without credentials anyone could create a session with 16 streams and ask for a relay on
each: 16 `srt-live-transmit` processes per session, outliving their WebSockets, with no cap,
and the SRT passphrase readable by every local user in `ps`. Against a real server with the
real `srt-live-transmit`, counting the server's child processes.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from gateway.brokerage.relay import RelayManager
from gateway.settings import Settings, SettingsError
from tests.brokerage.helpers import Api, Peer, api_for, free_udp_port, serve_punch
from tests.brokerage.test_srt import running
from tests.server import RunningServer

MAX_RELAYS = 2
IDLE_SECONDS = 2
_names = itertools.count()
_ports = itertools.count(20000, 2)


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from serve_punch(tmp_path_factory.mktemp("relays"),
                           PUNCH_MAX_RELAYS=str(MAX_RELAYS),
                           PUNCH_RELAY_IDLE_TIMEOUT=str(IDLE_SECONDS))


@pytest.fixture
def api(relay_server: RunningServer) -> Iterator[Api]:
    yield from api_for(relay_server)


def relay_processes(server: RunningServer) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if child.name() == "srt-live-transmit" and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


async def eventually(check: Callable[[], bool], within: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def ask_for_relay(api: Api, session: str, admin: str, stream: str
                        ) -> tuple[Peer, Peer, dict[str, Any]]:
    """Two peers (admin token) on `stream`, then a relay request: the reply to peer a."""
    a = await Peer.connect(api.base_url, session, admin)
    b = await Peer.connect(api.base_url, session, admin)
    await a.send({"type": "register", "port": next(_ports), "stream": stream})
    await a.expect("registered", stream=stream)
    await b.send({"type": "register", "port": next(_ports), "stream": stream})
    await b.expect("registered", stream=stream)
    await a.send({"type": "relay"})
    while True:
        message = await a.recv()
        if message["type"] in ("relay", "error"):
            return a, b, message


async def test_relays_are_capped_per_gateway_and_end_with_their_session(
        api: Api, relay_server: RunningServer) -> None:
    created = api.create(f"cap-{next(_names)}", streams=["s0", "s1", "s2"])
    name, admin = created["session"], created["token"]
    peers: list[Peer] = []
    try:
        for stream in ("s0", "s1"):
            a, b, reply = await ask_for_relay(api, name, admin, stream)
            peers += [a, b]
            assert reply["type"] == "relay", reply
        assert len(relay_processes(relay_server)) == MAX_RELAYS
        passphrase = reply["passphrase"]

        # the third stream is refused with a clear Punch error; nothing more is spawned
        a, b, refused = await ask_for_relay(api, name, admin, "s2")
        peers += [a, b]
        assert refused["error"] == "SERVER_ERROR"
        assert "relay" in refused["message"] and "limit" in refused["message"]
        # the cap is per gateway, not per session
        other = api.create(f"cap-{next(_names)}")
        other_a, b, refused = await ask_for_relay(api, other["session"], other["token"],
                                                  "default")
        peers += [other_a, b]
        assert refused["error"] == "SERVER_ERROR"
        assert len(relay_processes(relay_server)) == MAX_RELAYS

        # the session's passphrase is not on any relay's command line
        for process in relay_processes(relay_server):
            assert passphrase not in " ".join(process.cmdline()), process.cmdline()

        # closing the session stops its relays, and the capacity is free again
        assert api.request("DELETE", f"/api/session/{name}", token=admin).status_code == 204
        await eventually(lambda: not relay_processes(relay_server), 10, "relays stop")
        await other_a.send({"type": "relay"})
        granted = await other_a.expect("relay")
        [process] = relay_processes(relay_server)
        assert granted["passphrase"] not in " ".join(process.cmdline())
        assert api.request("DELETE", f"/api/session/{other['session']}",
                           token=other["token"]).status_code == 204
        await eventually(lambda: not relay_processes(relay_server), 10, "relays stop")
    finally:
        for peer in peers:
            await peer.close()


async def test_a_relay_ends_when_its_peers_have_been_gone_for_the_idle_timeout(
        api: Api, relay_server: RunningServer) -> None:
    created = api.create(f"idle-{next(_names)}")
    name, admin = created["session"], created["token"]
    a, b, relay = await ask_for_relay(api, name, admin, "default")
    assert relay["type"] == "relay", relay
    try:
        # in use while a peer's WebSocket is registered, however long
        await asyncio.sleep(IDLE_SECONDS + 2)
        assert len(relay_processes(relay_server)) == 1
    finally:
        await a.close()
        await b.close()
    waited = await eventually(lambda: not relay_processes(relay_server), IDLE_SECONDS + 5,
                              "an unused relay stops")
    assert waited >= IDLE_SECONDS - 0.5, f"stopped after {waited:.1f} s, before the timeout"
    state = api.request("GET", f"/api/session/{name}", token=admin).json()
    assert state["state"] == "WAITING" and state["streams"]["default"]["state"] == "WAITING"
    # a new pair may ask again
    a, b, again = await ask_for_relay(api, name, admin, "default")
    try:
        assert again["type"] == "relay", again
    finally:
        await a.close()
        await b.close()
        api.request("DELETE", f"/api/session/{name}", token=admin)
    await eventually(lambda: not relay_processes(relay_server), 10, "relays stop")


async def test_an_srt_caller_keeps_a_relay_in_use(api: Api, relay_server: RunningServer,
                                                  tmp_path: Path) -> None:
    """A connected SRT peer counts as a connected peer, WebSockets or not."""
    created = api.create(f"srt-{next(_names)}")
    name, admin = created["session"], created["token"]
    a, b, relay = await ask_for_relay(api, name, admin, "default")
    assert relay["type"] == "relay", relay
    uri = (f"srt://127.0.0.1:{relay['port']}?mode=caller&passphrase={relay['passphrase']}"
           f"&pbkeylen=16&latency={relay['latency']}")
    command = f"srt-live-transmit udp://127.0.0.1:{free_udp_port()} {shlex.quote(uri)}"
    with running(command, tmp_path / "caller.log"):
        await eventually(lambda: "SRT target connected" in (tmp_path / "caller.log").read_text(),
                         10, "the caller connects to the relay")
        await a.close()
        await b.close()
        await asyncio.sleep(IDLE_SECONDS + 2)
        assert len(relay_processes(relay_server)) == 1
    await eventually(lambda: not relay_processes(relay_server), IDLE_SECONDS + 5,
                     "the relay stops once the caller is gone too")
    api.request("DELETE", f"/api/session/{name}", token=admin)


@pytest.mark.parametrize(("name", "value"), [
    ("PUNCH_MAX_RELAYS", "-1"), ("PUNCH_MAX_RELAYS", "many"), ("PUNCH_MAX_RELAYS", "100000"),
    ("PUNCH_RELAY_IDLE_TIMEOUT", "0"), ("PUNCH_RELAY_IDLE_TIMEOUT", "soon"),
])
def test_a_bad_relay_setting_is_one_line_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(name) and "\n" not in str(caught.value)


def test_relay_settings_default_to_16_and_60_s() -> None:
    settings = Settings.from_env({})
    assert (settings.punch_max_relays, settings.punch_relay_idle_timeout) == (16, 60)
    assert (RelayManager().max_relays, RelayManager().idle_timeout) == (16, 60)
