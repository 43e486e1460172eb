"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def _trusted(address: str, proxies: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(remote_addr: str | None, headers: Mapping[str, str],
              trusted_proxies: list[Network]) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies."""
    address = remote_addr or "unknown"
    if not trusted_proxies or not _trusted(address, trusted_proxies):
        return address
    forwarded = [part.strip() for part in headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([part for part in forwarded if part]):
        if not _trusted(hop, trusted_proxies):
            return hop
        address = hop
    return address


def request_client_ip() -> str:
    """The current request's (or WebSocket's) client address."""
    from quart import has_websocket_context, request, websocket

    from gateway.state import gateway_state

    current = websocket if has_websocket_context() else request
    proxies = parse_networks(gateway_state().settings.trusted_proxies)
    return client_ip(current.remote_addr, current.headers, proxies)
