from __future__ import annotations

import asyncio
import socket

import pytest
from aiortc import RTCIceServer, RTCPeerConnection

from media.network import (
    NetworkConfig,
    PortRangeExhausted,
    check_internals,
    create_peer_connection,
    ice_servers_from_env,
)

LOOPBACK = {"loopback": True, "allowed_ips": ["127.0.0.1"]}


def free_port_range(size: int) -> tuple[int, int]:
    """A range of ``size`` UDP ports that are free right now."""
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        start = probe.getsockname()[1]
        probe.close()
        if start + size > 65535:
            continue
        socks = []
        try:
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return start, start + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def candidate_lines(pc: RTCPeerConnection) -> list[str]:
    return [line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate")]


def candidate_ports(pc: RTCPeerConnection) -> set[int]:
    return {int(line.split()[5]) for line in candidate_lines(pc)}


async def connect(a: RTCPeerConnection, b: RTCPeerConnection) -> None:
    opened = asyncio.get_running_loop().create_future()
    channel = a.createDataChannel("probe")
    channel.on("open", lambda: opened.done() or opened.set_result(True))
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(opened, 10)


def test_internals_pinned() -> None:
    check_internals()


async def test_peers_connect_inside_port_range() -> None:
    low, high = free_port_range(6)
    config = NetworkConfig(port_min=low, port_max=high, **LOOPBACK)
    a, b = create_peer_connection(config), create_peer_connection(config)
    try:
        await connect(a, b)
        ports = candidate_ports(a) | candidate_ports(b)
        assert len(ports) == 2
        assert all(low <= p <= high for p in ports), (ports, low, high)
        assert all(" 127.0.0.1 " in line for line in candidate_lines(a) + candidate_lines(b))
        assert a.connectionState == b.connectionState == "connected"
    finally:
        await a.close()
        await b.close()


async def test_exhausted_range_gives_clear_error() -> None:
    low, high = free_port_range(2)
    config = NetworkConfig(port_min=low, port_max=high, **LOOPBACK)
    a = create_peer_connection(config)
    b = create_peer_connection(config)
    c = create_peer_connection(config)
    try:
        for pc in (a, b):
            pc.createDataChannel("x")
            await pc.setLocalDescription(await pc.createOffer())
        c.createDataChannel("x")
        with pytest.raises(PortRangeExhausted, match=f"no free UDP port .* {low}-{high}"):
            await c.setLocalDescription(await c.createOffer())
    finally:
        for pc in (a, b, c):
            await pc.close()
    # closing releases the ports
    d = create_peer_connection(config)
    try:
        d.createDataChannel("x")
        await d.setLocalDescription(await d.createOffer())
        assert candidate_ports(d) <= set(range(low, high + 1))
    finally:
        await d.close()


async def test_public_ip_is_advertised() -> None:
    # Gathering only: nothing is sent to the (documentation-range) public address.
    replace = create_peer_connection(NetworkConfig(public_ips=["203.0.113.7"], **LOOPBACK))
    add = create_peer_connection(
        NetworkConfig(public_ips=["203.0.113.8/127.0.0.1"], public_ip_mode="add", **LOOPBACK)
    )
    try:
        for pc in (replace, add):
            pc.createDataChannel("x")
            await pc.setLocalDescription(await pc.createOffer())
        replaced = candidate_lines(replace)
        assert len(replaced) == 1 and " 203.0.113.7 " in replaced[0] and "typ host" in replaced[0]
        added = candidate_lines(add)
        hosts = {line.split()[4] for line in added}
        assert hosts == {"127.0.0.1", "203.0.113.8"}
        assert len({line.split()[5] for line in added}) == 1  # same socket, same port
    finally:
        await replace.close()
        await add.close()


async def test_allowlist_excludes_other_addresses() -> None:
    pc = create_peer_connection(NetworkConfig(loopback=True, allowed_ips=["127.0.0.0/8"]))
    try:
        pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        assert {line.split()[4] for line in candidate_lines(pc)} == {"127.0.0.1"}
    finally:
        await pc.close()


def test_host_addresses_filters() -> None:
    assert NetworkConfig(**LOOPBACK).host_addresses() == ["127.0.0.1"]
    assert "127.0.0.1" not in NetworkConfig().host_addresses()
    assert NetworkConfig(interfaces=["no-such-if0"], loopback=True).host_addresses() == []


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        NetworkConfig(port_min=10)
    with pytest.raises(ValueError):
        NetworkConfig(port_min=2000, port_max=1000)
    with pytest.raises(ValueError):
        NetworkConfig(public_ips=["not-an-ip"])
    config = NetworkConfig.from_env(
        {
            "RTC_PORT_MIN": "40000",
            "RTC_PORT_MAX": "40100",
            "RTC_PUBLIC_IPS": "198.51.100.1",
            "RTC_ALLOWED_IPS": "10.0.0.0/8, 127.0.0.1",
            "RTC_LOOPBACK": "true",
        }
    )
    assert (config.port_min, config.port_max, config.loopback) == (40000, 40100, True)
    assert config.public_ips == ["198.51.100.1"]
    assert config.allowed_ips == ["10.0.0.0/8", "127.0.0.1"]


def test_ice_servers_from_env() -> None:
    assert ice_servers_from_env({}) == []
    servers = ice_servers_from_env(
        {
            "STUN_URLS": "stun:stun1.example.org:3478, stun:stun2.example.org",
            "TURN_URLS": "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
            "TURN_USERNAME": "user",
            "TURN_PASSWORD": "secret",
        }
    )
    assert servers == [
        RTCIceServer(urls=["stun:stun1.example.org:3478", "stun:stun2.example.org"]),
        RTCIceServer(
            urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
            username="user",
            credential="secret",
        ),
    ]
    with pytest.raises(ValueError):
        ice_servers_from_env({"STUN_URLS": "turn:x.example.org"})
    with pytest.raises(ValueError):
        ice_servers_from_env({"TURN_URLS": "turn:x.example.org"})
    with pytest.raises(ValueError):
        ice_servers_from_env({"STUN_URLS": "http://x.example.org"})


async def test_peer_factory_for_media_core() -> None:
    from aiortc import RTCConfiguration

    from media.dtls import CompatCertificate
    from media.network import peer_factory

    low, high = free_port_range(3)
    create = peer_factory(NetworkConfig(port_min=low, port_max=high, **LOOPBACK))
    pc = create(RTCConfiguration(iceServers=[]))
    try:
        assert isinstance(pc._RTCPeerConnection__certificates[0], CompatCertificate)  # type: ignore[attr-defined]
        pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        assert candidate_ports(pc) <= set(range(low, high + 1))
    finally:
        await pc.close()
