"""The signalling WebSocket against a real server: registration, matching, errors, tally."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from pathlib import Path

import pytest
import websockets

from tests import contract
from tests.brokerage.helpers import Api, Peer
from tests.server import RunningServer

_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def _peer_token(api: Api, session: str, admin: str, stream: str = "default") -> str:
    """A peer token as the dashboard hands it out (minted into the join controls)."""
    page = api.http.get(f"/s/{session}", params={"t": admin})
    assert page.status_code == 200
    config = json.loads(re.search(r"const CFG = (\{.*?\});", page.text).group(1))
    return config["peerTokens"][stream]


async def test_two_peers_get_each_others_address_and_connection_strings(
        api: Api, punch_server: RunningServer) -> None:
    created = api.create(_name("pair"), latency=150)
    name, admin = created["session"], created["token"]
    token = _peer_token(api, name, admin)
    observer = await Peer.connect(api.base_url, name, admin)
    a = await Peer.connect(api.base_url, name, token)
    b = await Peer.connect(api.base_url, name, token)
    try:
        for peer in (observer, a, b):
            assert (await peer.recv())["state"] == "WAITING"
        await a.send({"type": "register", "port": 5001})
        assert await a.expect("registered") == {"type": "registered", "stream": "default",
                                                 "peer": "a"}
        await b.send({"type": "register", "port": 5002, "stream": "default"})
        assert (await b.expect("registered"))["peer"] == "b"
        to_a, to_b = await a.expect("peer"), await b.expect("peer")
        assert (to_a["host"], to_a["port"]) == ("127.0.0.1", 5002)
        assert (to_b["host"], to_b["port"]) == ("127.0.0.1", 5001)
        for message in (to_a, to_b):
            assert message["mode"] == "rendezvous" and message["latency"] == 150
            assert len(message["passphrase"]) == 32
        match = await observer.expect("peer_match")
        assert match["peers"] == [{"host": "127.0.0.1", "port": 5001},
                                  {"host": "127.0.0.1", "port": 5002}]
        for peer in (observer, a, b):
            await peer.expect("state", state="READY")

        response = api.request("GET", f"/api/session/{name}/connect", token=admin)
        assert response.status_code == 200
        body = response.json()
        assert body["stream"] == "default" and body["role"] == "sender"
        for side, remote in (("for_peer_a", 5002), ("for_peer_b", 5001)):
            assert set(body[side]) == {"ffmpeg", "obs", "vmix", "gstreamer",
                                       "srt-live-transmit"}
            assert f"127.0.0.1:{remote}" in body[side]["srt-live-transmit"]
            assert "latency=150000" in body[side]["obs"]
            assert "Latency (ms): 150" in body[side]["vmix"]
        assert "-i input.ts" in body["for_peer_a"]["ffmpeg"]
        assert "output.ts" in body["for_peer_b"]["ffmpeg"]
        assert "srtsink" in body["for_peer_a"]["gstreamer"]
        assert "srtsrc" in body["for_peer_b"]["gstreamer"]
        same = api.request("GET", f"/api/session/{name}/connect?stream=&role=", token=admin)
        assert same.json() == body
        flipped = api.request("GET", f"/api/session/{name}/connect",
                              params={"role": "receiver"}, token=token).json()
        assert "srtsrc" in flipped["for_peer_a"]["gstreamer"]
        assert flipped["role"] == "receiver"

        state = api.request("GET", f"/api/session/{name}", token=token).json()
        assert state["state"] == "READY"
        assert state["streams"]["default"]["peers"] == 2
    finally:
        for peer in (observer, a, b):
            await peer.close()


async def test_third_peer_foreign_stream_and_invalid_messages(api: Api) -> None:
    created = api.create(_name("busy"), streams=["cam1", "cam2"])
    name, admin = created["session"], created["token"]
    cam1, cam2 = _peer_token(api, name, admin, "cam1"), _peer_token(api, name, admin, "cam2")
    peers = [await Peer.connect(api.base_url, name, cam1) for _ in range(3)]
    try:
        for port, peer in zip((6000, 6002), peers[:2], strict=True):
            await peer.send({"type": "register", "port": port})
            await peer.expect("registered", stream="cam1")
        third = peers[2]
        await third.send({"type": "register", "port": 6004})
        assert (await third.expect("error"))["error"] == "STREAM_TAKEN"
        await third.send({"type": "register", "port": 6004, "stream": "cam2"})
        assert (await third.expect("error"))["error"] == "AUTH_FAILED"
        for bad in ('{"type": "register", "port": 80}', "not json", "[]",
                    '{"type": "register", "port": 6000, "extra": 1}', '{"type": "nope"}',
                    '{"type": "status", "srt": "flying"}'):
            await third.send_raw(bad)
            error = await third.expect("error")
            assert error["error"] == "INVALID_MESSAGE", bad
        # still usable: a peer token for cam2 registers fine on a new socket, and
        # tally from a peer is refused while the admin's reaches everyone
        other = await Peer.connect(api.base_url, name, cam2)
        peers.append(other)
        await other.send({"type": "register", "port": 6010})
        await other.expect("registered", stream="cam2", peer="a")
        await third.send({"type": "tally", "stream": "cam1", "state": "program"})
        assert (await third.expect("error"))["error"] == "AUTH_FAILED"
        admin_ws = await Peer.connect(api.base_url, name, admin)
        peers.append(admin_ws)
        await admin_ws.send({"type": "tally", "stream": "cam1", "state": "program"})
        for peer in (peers[0], third, other, admin_ws):
            await peer.expect("tally", stream="cam1", state="program")
        # health goes to admin observers only
        await peers[0].send({"type": "health", "status": "warning", "rtt": 12.5, "loss": 0.1})
        event = await admin_ws.expect("health")
        assert event == {"type": "health", "stream": "cam1", "peer": "a", "status": "warning",
                         "rtt": 12.5, "loss": 0.1}
        assert all(m["type"] != "health" for m in await other.quiet())
    finally:
        for peer in peers:
            await peer.close()


async def test_peer_leaving_frees_its_side(api: Api) -> None:
    created = api.create(_name("leave"))
    name, admin = created["session"], created["token"]
    token = _peer_token(api, name, admin)
    a = await Peer.connect(api.base_url, name, token)
    await a.send({"type": "register", "port": 7000})
    await a.expect("registered")
    b = await Peer.connect(api.base_url, name, token)
    await b.send({"type": "register", "port": 7002})
    await b.expect("peer")
    await b.close()
    await a.expect("state", state="WAITING")
    c = await Peer.connect(api.base_url, name, token)
    await c.send({"type": "register", "port": 7004})
    assert (await c.expect("registered"))["peer"] == "b"
    assert (await a.expect("peer"))["port"] == 7004
    await a.close()
    await c.close()


async def test_websocket_http_errors(api: Api) -> None:
    created = api.create(_name("wserr"))
    name, admin = created["session"], created["token"]
    plain = api.request("GET", f"/api/ws/{name}", params={"t": admin})
    assert plain.status_code == 426
    ws_url = api.base_url.replace("http://", "ws://")
    for path, status in ((f"/api/ws/{name}", 401), (f"/api/ws/{name}?t=p_bogus.x", 401),
                         (f"/api/ws/{name}?t={admin[:-2]}AA", 401)):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(ws_url + path, open_timeout=5)
        assert info.value.response.status_code == status
        reply = info.value.response
        headers = {k.lower(): v for k, v in reply.headers.raw_items()}
        contract.contract_for("brokerage").check(
            "GET", path.split("?")[0], contract.Reply(reply.status_code, headers, reply.body))
        assert json.loads(reply.body)["error"] == "AUTH_FAILED"
    api.request("DELETE", f"/api/session/{name}", token=admin)
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(ws_url + f"/api/ws/{name}?t={admin}", open_timeout=5)
    assert info.value.response.status_code == 404


async def test_delete_closes_every_socket(api: Api) -> None:
    created = api.create(_name("bye"))
    name, admin = created["session"], created["token"]
    token = _peer_token(api, name, admin)
    peer = await Peer.connect(api.base_url, name, token)
    await peer.recv()
    assert api.request("DELETE", f"/api/session/{name}", token=token).status_code == 403
    assert api.request("DELETE", f"/api/session/{name}", token=admin).status_code == 204
    assert (await peer.expect("state"))["state"] == "CLOSED"
    gone = api.request("GET", f"/api/session/{name}", token=admin)
    assert gone.status_code == 404 and gone.json()["error"] == "SESSION_EXPIRED"


async def test_forwarded_for_only_from_trusted_proxies(api: Api, tmp_path: Path) -> None:
    from tests.server import start_server

    async def registered_host(base_url: str, session: str, admin: str, token: str) -> str:
        headers = {"X-Forwarded-For": "198.51.100.4"}
        peers = []
        for port in (8000, 8002):
            url = base_url.replace("http://", "ws://") + f"/api/ws/{session}?t={token}"
            peer = Peer(await websockets.connect(url, additional_headers=headers))
            peers.append(peer)
            await peer.send({"type": "register", "port": port})
        message = await peers[0].expect("peer")
        for peer in peers:
            await peer.close()
        return message["host"]

    created = api.create(_name("xff"))
    untrusted = await registered_host(api.base_url, created["session"], created["token"],
                                      _peer_token(api, created["session"], created["token"]))
    assert untrusted == "127.0.0.1"
    proxied = start_server(tmp_path / "data", env={
        "MEDIAGATE_TRUSTED_PROXIES": "127.0.0.0/8", "PUNCH_RATE_LIMIT": "0"})
    try:
        other = Api(proxied.base_url)
        created = other.create("xff")
        host = await registered_host(proxied.base_url, "xff", created["token"],
                                     _peer_token(other, "xff", created["token"]))
        assert host == "198.51.100.4"
        other.close()
    finally:
        assert proxied.stop() == 0


async def test_shutdown_closes_sockets_with_going_away(tmp_path: Path) -> None:
    import time

    from tests.server import start_server

    server = start_server(tmp_path / "data")
    try:
        other = Api(server.base_url)
        created = other.create("drain")
        peer = await Peer.connect(server.base_url, "drain", created["token"])
        await peer.send({"type": "register", "port": 9300})
        await peer.expect("registered")
        other.close()
        started = time.monotonic()
        assert await asyncio.to_thread(server.stop) == 0
        assert time.monotonic() - started < 5
        with pytest.raises(websockets.ConnectionClosedOK):
            await peer.recv(5)
        assert peer.ws.close_code == 1001
        assert "Traceback" not in server.log()
    finally:
        server.stop()
