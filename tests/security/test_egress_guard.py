"""The one egress guard (gateway/egress.py): which addresses client-supplied URLs may reach."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx
import pytest

from gateway.egress import (
    HTTP_SCHEMES,
    RTMP_SCHEMES,
    SRT_SCHEMES,
    EgressPolicy,
    EgressRefused,
    is_public,
)
from gateway.settings import Settings, SettingsError

# Every spelling of an internal address a client has tried (finding 2 of issue 13).
REFUSED_URLS = [
    "http://127.0.0.1/",
    "http://127.1:8080/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fd00::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_internal_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        await EgressPolicy().check_url(url, HTTP_SCHEMES)
    assert "MEDIAGATE_EGRESS_ALLOW" in str(refused.value) or "resolve" in str(refused.value)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.215.14"])
def test_public_addresses_are_public(ip: str) -> None:
    assert is_public(ipaddress.ip_address(ip))
    EgressPolicy(own=frozenset()).check_ip(ipaddress.ip_address(ip))


def test_the_servers_own_addresses_are_refused_even_if_public() -> None:
    own = ipaddress.ip_address("203.0.113.7")
    public_own = ipaddress.ip_address("8.8.4.4")
    policy = EgressPolicy(own=frozenset({own, public_own}))
    with pytest.raises(EgressRefused):
        policy.check_ip(public_own)


async def test_the_allow_list_opens_a_range_and_only_that_range() -> None:
    policy = EgressPolicy.from_cidrs(["127.0.0.0/8"])
    target = await policy.check_url("http://0x7f000001:9000/hook", HTTP_SCHEMES)
    assert str(target.ip) == "127.0.0.1" and target.port == 9000
    with pytest.raises(EgressRefused):
        await policy.check_url("http://[::1]/", HTTP_SCHEMES)
    with pytest.raises(EgressRefused):
        await policy.check_url("http://169.254.169.254/", HTTP_SCHEMES)


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1/", "http://", "http://:80/",
    "http://example.com:99999/", "unix:///run/x.sock",
])
async def test_malformed_and_foreign_urls_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused):
        await EgressPolicy.from_cidrs(["0.0.0.0/0"]).check_url(url, HTTP_SCHEMES)


async def test_names_that_do_not_resolve_are_refused() -> None:
    with pytest.raises(EgressRefused, match="does not resolve"):
        await EgressPolicy().check_url("http://no-such-host.invalid/", HTTP_SCHEMES)


def test_pin_url_puts_the_checked_address_in_the_url_for_child_processes() -> None:
    policy = EgressPolicy.from_cidrs(["127.0.0.0/8", "::1/128"])
    url, target = policy.pin_url("rtmp://localhost/live/key?x=1", RTMP_SCHEMES)
    assert url == f"rtmp://{target.ip_literal}/live/key?x=1"
    assert target.host == "localhost" and target.port == 1935
    url, _ = policy.pin_url("srt://user:pw@127.0.0.1:9000?streamid=a", SRT_SCHEMES)
    assert url == "srt://user:pw@127.0.0.1:9000?streamid=a"
    with pytest.raises(EgressRefused, match="port"):
        policy.pin_url("srt://127.0.0.1", SRT_SCHEMES)
    with pytest.raises(EgressRefused):
        EgressPolicy().pin_url("rtmp://0x7f000001/live", RTMP_SCHEMES)


async def _serve_once(hits: list[bytes]) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, family=socket.AF_INET)
    return server, server.sockets[0].getsockname()[1]


async def test_the_http_client_never_connects_to_a_refused_address() -> None:
    hits: list[bytes] = []
    server, port = await _serve_once(hits)
    async with server, EgressPolicy().http_client(timeout=3) as client:
        for host in ("127.0.0.1", "localhost", "0x7f000001", "[::ffff:127.0.0.1]"):
            with pytest.raises(httpx.ConnectError):
                await client.post(f"http://{host}:{port}/hook", content=b"{}")
    assert hits == []


async def test_the_http_client_connects_where_the_allow_list_says() -> None:
    hits: list[bytes] = []
    server, port = await _serve_once(hits)
    async with server, EgressPolicy.from_cidrs(["127.0.0.0/8"]).http_client(timeout=3) as client:
        response = await client.post(f"http://localhost:{port}/hook", content=b"{}")
    assert response.status_code == 204
    assert hits and b"host: localhost:" in hits[0].lower()


async def test_the_http_client_ignores_proxies_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hits: list[bytes] = []
    proxy, port = await _serve_once(hits)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}/")
    async with proxy, EgressPolicy().http_client(timeout=3) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://10.1.2.3/")
    assert hits == [], "the request went through the environment's proxy, unchecked"


def test_the_setting_takes_cidrs_and_names_itself_when_wrong() -> None:
    settings = Settings.from_env({"MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8, ::1/128"})
    assert settings.egress_allow == ["127.0.0.0/8", "::1/128"]
    with pytest.raises(SettingsError, match=r"^MEDIAGATE_EGRESS_ALLOW"):
        Settings.from_env({"MEDIAGATE_EGRESS_ALLOW": "not-a-network"})
