"""ICE networking policy for aiortc peers: UDP port range, advertised public IPs,
interface/IP allowlist, loopback, and STUN/TURN settings from the environment.

aioice 0.13 binds one UDP socket per local address on port 0 and has no hooks for any
of this, so ``apply_network_config(pc, config)`` adapts each peer connection
individually (no process-wide patch): it wraps the instance's
``RTCPeerConnection.__createDtlsTransport`` so that every ICE gatherer the peer creates
gets its ``aioice.Connection.get_component_candidates`` replaced by
``_component_candidates`` below. Host candidates are bound by us; STUN server-reflexive
candidates use aioice's ``server_reflexive_candidate``; TURN is left to aioice's
own code. Pinned to aioice >=0.13,<0.14 and aiortc >=1.16,<1.17 (``check_internals``).
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import ipaddress
import os
import random
import socket
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aioice
import aioice.ice as aioice_ice
import aiortc
import ifaddr
from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import parse_stun_turn_uri

from .dtls import Mode, configure_peer_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PortRangeExhausted(OSError):
    pass


@dataclass
class NetworkConfig:
    """``port_min``/``port_max`` are inclusive; both None means ephemeral ports.

    ``public_ips`` entries are ``"PUBLIC"`` (applies to every local address of the same
    family) or ``"PUBLIC/LOCAL"`` (only to that local address). With
    ``public_ip_mode="replace"`` the host candidate carries the public address (1:1 NAT,
    Kubernetes hostPort/NodePort); with ``"add"`` it is advertised in addition.
    ``allowed_ips`` holds addresses or CIDR networks; None allows every address.
    ``interfaces`` restricts gathering to these interface names.
    """

    port_min: int | None = None
    port_max: int | None = None
    public_ips: list[str] = field(default_factory=list)
    public_ip_mode: str = "replace"
    allowed_ips: list[str] | None = None
    interfaces: list[str] | None = None
    loopback: bool = False
    ipv4: bool = True
    ipv6: bool = True

    def __post_init__(self) -> None:
        if (self.port_min is None) != (self.port_max is None):
            raise ValueError("port_min and port_max must be set together")
        if (
            self.port_min is not None
            and self.port_max is not None
            and not (1 <= self.port_min <= self.port_max <= 65535)
        ):
            raise ValueError(f"invalid UDP port range {self.port_min}-{self.port_max}")
        if self.public_ip_mode not in ("replace", "add"):
            raise ValueError("public_ip_mode must be 'replace' or 'add'")
        self._allowed: list[IPNetwork] | None = (
            None
            if self.allowed_ips is None
            else [ipaddress.ip_network(a, strict=False) for a in self.allowed_ips]
        )
        self._public: list[tuple[IPAddress, IPAddress | None]] = []
        for entry in self.public_ips:
            public, _, local = entry.partition("/")
            self._public.append(
                (ipaddress.ip_address(public), ipaddress.ip_address(local) if local else None)
            )
        self._next_port = (
            random.randint(self.port_min, self.port_max) if self.port_min is not None else 0
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> NetworkConfig:
        """``RTC_PORT_MIN``, ``RTC_PORT_MAX``, ``RTC_PUBLIC_IPS``, ``RTC_ALLOWED_IPS``,
        ``RTC_INTERFACES`` (comma-separated), ``RTC_LOOPBACK`` (1/true)."""

        def items(name: str) -> list[str] | None:
            value = env.get(name, "").strip()
            return [x.strip() for x in value.split(",") if x.strip()] if value else None

        def port(name: str) -> int | None:
            value = env.get(name, "").strip()
            return int(value) if value else None

        return cls(
            port_min=port("RTC_PORT_MIN"),
            port_max=port("RTC_PORT_MAX"),
            public_ips=items("RTC_PUBLIC_IPS") or [],
            allowed_ips=items("RTC_ALLOWED_IPS"),
            interfaces=items("RTC_INTERFACES"),
            loopback=env.get("RTC_LOOPBACK", "").lower() in ("1", "true", "yes"),
        )

    def host_addresses(self) -> list[str]:
        """Local addresses to gather host candidates on, in interface order."""
        found: list[str] = []
        for adapter in ifaddr.get_adapters():
            if self.interfaces is not None and adapter.nice_name not in self.interfaces:
                continue
            for ip in adapter.ips:
                if isinstance(ip.ip, str):
                    addr: IPAddress = ipaddress.ip_address(ip.ip)
                elif ip.ip[2] == 0:  # IPv6 without scope id (no link-local)
                    addr = ipaddress.ip_address(ip.ip[0])
                else:
                    continue
                if self.allows(addr) and str(addr) not in found:
                    found.append(str(addr))
        return found

    def allows(self, addr: IPAddress) -> bool:
        if (addr.version == 4 and not self.ipv4) or (addr.version == 6 and not self.ipv6):
            return False
        if addr.is_loopback and not self.loopback:
            return False
        return self._allowed is None or any(addr in net for net in self._allowed)

    def advertised(self, local: str) -> list[str]:
        local_addr = ipaddress.ip_address(local)
        return [
            str(public)
            for public, only in self._public
            if public.version == local_addr.version and only in (None, local_addr)
        ]

    def ports(self) -> list[int]:
        """Ports to try, round-robin through the range; [0] when unrestricted."""
        if self.port_min is None or self.port_max is None:
            return [0]
        size = self.port_max - self.port_min + 1
        start = self._next_port
        self._next_port = self.port_min + (start - self.port_min + 1) % size
        return [self.port_min + (start - self.port_min + i) % size for i in range(size)]


async def _bind(conn: aioice.Connection, address: str, config: NetworkConfig) -> Any:
    loop = asyncio.get_running_loop()
    for port in config.ports():
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(conn), local_addr=(address, port)
            )
        except OSError as exc:
            if port and exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, aioice_ice.turn.UDP_SOCKET_BUFFER_SIZE
            )
        return protocol
    raise PortRangeExhausted(
        errno.EADDRINUSE,
        f"no free UDP port for ICE on {address} in range {config.port_min}-{config.port_max}",
    )


_original_component_candidates = aioice.Connection.get_component_candidates


async def _component_candidates(
    conn: aioice.Connection,
    config: NetworkConfig,
    component: int,
    addresses: list[str],
    timeout: int = 5,  # noqa: ASYNC109 (aioice's signature)
) -> list[Candidate]:
    # aioice passes [] under the relay-only policy: keep it that way.
    relay_only = conn._transport_policy != aioice_ice.TransportPolicy.ALL
    hosts = [] if relay_only else config.host_addresses()
    candidates: list[Candidate] = []
    protocols = []
    for address in hosts:
        protocol = await _bind(conn, address, config)
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        public = config.advertised(host)
        announced = public[0] if public and config.public_ip_mode == "replace" else host
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", announced),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=announced,
            port=port,
            type="host",
        )
        protocols.append(protocol)
        candidates.append(protocol.local_candidate)
        extra = public[1:] if config.public_ip_mode == "replace" else public
        for ip in extra:
            candidates.append(
                Candidate(
                    foundation=candidate_foundation("host", "udp", ip),
                    component=component,
                    transport="udp",
                    priority=candidate_priority(component, "host") - 1,
                    host=ip,
                    port=port,
                    type="host",
                )
            )
    conn._protocols += protocols

    tasks = []
    if conn.stun_server:
        tasks = [
            asyncio.create_task(aioice_ice.server_reflexive_candidate(p, conn.stun_server))
            for p in protocols
            if ipaddress.ip_address(p.transport.get_extra_info("sockname")[0]).version == 4
        ]
    # TURN (and nothing else, since no addresses are passed) stays aioice's business.
    candidates += await _original_component_candidates(conn, component, [], timeout)
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in done:
            if task.exception() is None:
                candidates.append(task.result()[0])
        for task in pending:
            task.cancel()
    return candidates


def configure_ice_connection(conn: aioice.Connection, config: NetworkConfig) -> None:
    async def get_component_candidates(
        self: aioice.Connection,
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 (aioice's signature)
    ) -> list[Candidate]:
        return await _component_candidates(self, config, component, addresses, timeout)

    conn.get_component_candidates = types.MethodType(get_component_candidates, conn)  # type: ignore[method-assign]


def apply_network_config(pc: RTCPeerConnection, config: NetworkConfig) -> None:
    """Apply ``config`` to every ICE gatherer ``pc`` creates. Call right after
    constructing ``pc`` (before adding transceivers or setting descriptions)."""
    original: Callable[[], RTCDtlsTransport] = pc._RTCPeerConnection__createDtlsTransport  # type: ignore[attr-defined]

    def create_dtls_transport() -> RTCDtlsTransport:
        dtls = original()
        configure_ice_connection(dtls.transport.iceGatherer._connection, config)
        return dtls

    pc._RTCPeerConnection__createDtlsTransport = create_dtls_transport  # type: ignore[attr-defined]


def check_internals() -> None:
    """Raise if the aioice/aiortc internals this module relies on have changed."""
    if not aioice.__version__.startswith("0.13."):
        raise RuntimeError(f"media.network is pinned to aioice 0.13.x, found {aioice.__version__}")
    if not aiortc.__version__.startswith("1.16."):
        raise RuntimeError(f"media.network is pinned to aiortc 1.16.x, found {aiortc.__version__}")
    gather = inspect.getsource(aioice.Connection.gather_candidates)
    if "self.get_component_candidates(component=component, addresses=addresses)" not in gather:
        raise RuntimeError("aioice gather_candidates no longer calls get_component_candidates")
    params = list(inspect.signature(_original_component_candidates).parameters)
    if params != ["self", "component", "addresses", "timeout"]:
        raise RuntimeError(f"aioice get_component_candidates signature changed: {params}")
    source = inspect.getsource(RTCPeerConnection)
    if source.count("self.__createDtlsTransport()") < 2:
        raise RuntimeError("RTCPeerConnection no longer uses __createDtlsTransport")
    for name in ("_protocols", "_transport_policy", "stun_server"):
        if f"self.{name}" not in inspect.getsource(aioice.Connection):
            raise RuntimeError(f"aioice.Connection.{name} is gone")


def _split(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def ice_servers_from_env(env: Mapping[str, str] = os.environ) -> list[RTCIceServer]:
    """``STUN_URLS`` and ``TURN_URLS`` (comma-separated), ``TURN_USERNAME``,
    ``TURN_PASSWORD``. Raises ValueError on a malformed URL. Note that aioice uses
    only the first STUN and the first usable TURN server."""
    servers: list[RTCIceServer] = []
    stun = _split(env.get("STUN_URLS"))
    for url in stun:
        if parse_stun_turn_uri(url)["scheme"] != "stun":
            raise ValueError(f"STUN_URLS entry is not a stun: URL: {url!r}")
    if stun:
        servers.append(RTCIceServer(urls=stun))
    turn = _split(env.get("TURN_URLS"))
    for url in turn:
        if parse_stun_turn_uri(url)["scheme"] not in ("turn", "turns"):
            raise ValueError(f"TURN_URLS entry is not a turn:/turns: URL: {url!r}")
    if turn:
        username, password = env.get("TURN_USERNAME"), env.get("TURN_PASSWORD")
        if not username or not password:
            raise ValueError("TURN_URLS needs TURN_USERNAME and TURN_PASSWORD")
        servers.append(RTCIceServer(urls=turn, username=username, credential=password))
    return servers


def make_configuration(ice_servers: list[RTCIceServer] | None = None) -> RTCConfiguration:
    """An ``RTCConfiguration`` with explicit ICE servers: aiortc falls back to a public
    Google STUN server when ``iceServers`` is None, so pass [] for none."""
    return RTCConfiguration(iceServers=list(ice_servers or []))


def create_peer_connection(
    config: NetworkConfig | None = None,
    ice_servers: list[RTCIceServer] | None = None,
    *,
    dtls_mode: Mode = "auto",
) -> RTCPeerConnection:
    """A new peer with the network policy and the FFmpeg DTLS interop applied."""
    return peer_factory(config, dtls_mode=dtls_mode)(make_configuration(ice_servers))


def peer_factory(
    config: NetworkConfig | None = None, *, dtls_mode: Mode = "auto"
) -> Callable[[RTCConfiguration], RTCPeerConnection]:
    """For ``MediaConfig.peer_factory``: every peer gets ``config`` (if any) and
    ``media.dtls.configure_peer_connection(pc, dtls_mode)``."""

    def create(rtc_config: RTCConfiguration) -> RTCPeerConnection:
        pc = RTCPeerConnection(rtc_config)
        if config is not None:
            apply_network_config(pc, config)
        configure_peer_connection(pc, dtls_mode)
        return pc

    return create
