"""The egress guard: every connection the gateway makes to a client-supplied address.

Clients hand the gateway URLs (webhooks, chat platforms, RTMP/SRT sources and destinations).
Without a guard any API key could make the server connect to its own loopback, the pod
network or a cloud metadata service. The policy: resolve the name, refuse every address that
is not globally routable (loopback, RFC 1918 / ULA private, link-local incl.
169.254.169.254, CGNAT, multicast, unspecified, reserved, IPv4 embedded in IPv6) or that is
one of this machine's own addresses, unless it is inside `MEDIAGATE_EGRESS_ALLOW`; then
connect to the address that was checked, never to a second lookup (no DNS-rebinding gap).

Operator-configured addresses (OAuth providers, S3) are not client-supplied and do not pass
through here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpcore
import httpx
import ifaddr

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "MEDIAGATE_EGRESS_ALLOW"
"""Named in refusals so an operator knows which knob opens an address range."""


class EgressRefused(Exception):
    """The address is not one clients may make the gateway connect to.

    `str()` is safe to show to the client at create/update time; delivery failures are
    reported without it (see `DELIVERY_FAILED`).
    """


DELIVERY_FAILED = "delivery failed"
"""The only text a client sees about a failed outbound delivery: refusals, timeouts, resets
and HTTP statuses all read the same, so the gateway cannot be used as a port scanner."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast, judged on the IPv4 address an IPv6 one embeds."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(embedded)
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return False
    if ip.is_private or ip.is_reserved or ip in _SHARED:
        return False
    return ip.is_global


def local_addresses() -> frozenset[IPAddress]:
    """Every address configured on this machine's interfaces."""
    found: set[IPAddress] = set()
    for adapter in ifaddr.get_adapters():
        for entry in adapter.ips:
            raw = entry.ip[0] if isinstance(entry.ip, tuple) else entry.ip
            try:
                found.add(ipaddress.ip_address(raw))
            except ValueError:
                continue
    return frozenset(found)


@dataclass(frozen=True)
class Target:
    """A checked destination: the name the client gave and the address to connect to."""

    host: str
    ip: IPAddress
    port: int

    @property
    def ip_literal(self) -> str:
        """The address as it goes in a URL's authority."""
        return f"[{self.ip}]" if self.ip.version == 6 else str(self.ip)


@dataclass
class EgressPolicy:
    allow: tuple[Network, ...] = ()
    """Ranges the operator opened on purpose (e.g. a chat bot on the same host)."""
    own: frozenset[IPAddress] = field(default_factory=local_addresses)

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> EgressPolicy:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def permits(self, ip: IPAddress) -> bool:
        if any(ip in network for network in self.allow):
            return True
        return is_public(ip) and ip not in self.own

    def check_ip(self, ip: IPAddress) -> None:
        if not self.permits(ip):
            raise EgressRefused(
                "the address is not reachable from this server: private, loopback, "
                f"link-local and the server's own addresses are refused unless {SETTING} "
                "allows them"
            )

    def resolve(self, host: str, port: int) -> Target:
        """Resolve `host` and check every address it has; blocking (threads, child setup)."""
        return self._pick(host, port, _getaddrinfo(host, port))

    async def resolve_async(self, host: str, port: int) -> Target:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise EgressRefused(f"the host {host!r} does not resolve") from None
        return self._pick(host, port, _addresses(infos))

    def _pick(self, host: str, port: int, addresses: list[IPAddress]) -> Target:
        if not addresses:
            raise EgressRefused(f"the host {host!r} does not resolve")
        # One forbidden address refuses the name: a rebinding name that answers both a
        # public and a private address must not get through by luck of ordering.
        for ip in addresses:
            self.check_ip(ip)
        return Target(host, addresses[0], port)

    # -- URLs ------------------------------------------------------------------------------

    async def check_url(self, url: str, schemes: dict[str, int]) -> Target:
        """At create/update time: the URL's scheme is one of `schemes` (scheme -> default
        port) and its host resolves only to permitted addresses."""
        parts = _split(url, schemes)
        return await self.resolve_async(_host(parts), parts.port or schemes[parts.scheme])

    def pin_url(self, url: str, schemes: dict[str, int]) -> tuple[str, Target]:
        """At connect time, for children that resolve names themselves (FFmpeg, SRT tools):
        the URL with its host replaced by the checked address."""
        parts = _split(url, schemes)
        target = self.resolve(_host(parts), parts.port or schemes[parts.scheme])
        netloc = target.ip_literal + (f":{parts.port}" if parts.port else "")
        if parts.username or parts.password:
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = f"{userinfo}@{netloc}"
        return urlunsplit(parts._replace(netloc=netloc)), target

    # -- HTTP ------------------------------------------------------------------------------

    def http_client(self, *, timeout: float = 10.0) -> httpx.AsyncClient:
        """An HTTP client whose every connection passes this policy. No redirects, no proxy
        from the environment (a proxy would do the connecting for us, unchecked)."""
        return httpx.AsyncClient(
            transport=_GuardedTransport(self), follow_redirects=False, trust_env=False,
            timeout=timeout,
        )


HTTP_SCHEMES = {"http": 80, "https": 443}
RTMP_SCHEMES = {"rtmp": 1935, "rtmps": 443}
SRT_SCHEMES = {"srt": 0}


def _split(url: str, schemes: dict[str, int]) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise EgressRefused("the URL is not valid") from None
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise EgressRefused(f"the URL must start with one of {allowed}")
    if parts.scheme == "srt" and parts.port is None:
        raise EgressRefused("an srt:// URL needs a port")
    return parts


def _host(parts: SplitResult) -> str:
    if not parts.hostname:
        raise EgressRefused("the URL has no host")
    return parts.hostname


def _addresses(infos: list[tuple]) -> list[IPAddress]:  # type: ignore[type-arg]
    found: list[IPAddress] = []
    for info in infos:
        raw = info[4][0]
        ip = ipaddress.ip_address(raw.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and "%" in raw:
            ip = ipaddress.IPv6Address(raw)  # keep the scope: scoped addresses are refused
        if ip not in found:
            found.append(ip)
    return found


def _getaddrinfo(host: str, port: int) -> list[IPAddress]:
    try:
        return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except (OSError, UnicodeError):
        raise EgressRefused(f"the host {host!r} does not resolve") from None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer with the policy between the lookup and the connect. TLS
    still verifies against the name (httpcore passes it to `start_tls` separately)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: Iterable[object] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            target = await self._policy.resolve_async(host, port)
        except EgressRefused as exc:
            raise httpcore.ConnectError(str(exc)) from None
        return await self._inner.connect_tcp(
            str(target.ip), port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,  # type: ignore[arg-type]
        )

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[object] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an egress target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(policy),
        )
