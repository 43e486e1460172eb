"""Shared HTTP machinery: request ids, error shapes, body limits, CORS, rate limits, logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from quart import Quart, request
from quart.testing import QuartClient

from gateway.app import create_app
from gateway.bodylimit import body_limit
from gateway.clientip import client_ip, parse_networks
from gateway.cors import CorsPolicy
from gateway.errors import ApiError
from gateway.logs import REDACTED, RedactingFilter, Redactor, loggable_path
from gateway.pagination import CursorCodec, PaginationError, parse_limit
from gateway.ratelimit import TokenBucketLimiter, per_minute
from gateway.settings import Settings


async def test_request_id_is_generated_or_echoed(client: QuartClient) -> None:
    generated = await client.get("/healthz")
    assert generated.headers["X-Request-Id"].startswith("req_")
    echoed = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    hostile = await client.get("/healthz", headers={"X-Request-Id": "a b\u00e9" * 50})
    assert hostile.headers["X-Request-Id"].startswith("req_")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/session/x/nothing", {"error": "SESSION_EXPIRED", "message": "not found"}),
        ("/api/v1/nothing", {"error": "not found"}),
        ("/api/rooms/nothing/deeper", {"error": "not found"}),
        ("/apps/app/nothing", {"errorCode": "not_found", "errorDescription": "not found"}),
        ("/v1/apps/app/nothing", {"errorCode": "not_found", "errorDescription": "not found"}),
        ("/elsewhere", {"error": "not found"}),
    ],
)
async def test_unknown_paths_answer_in_the_owning_apis_shape(
    client: QuartClient, path: str, expected: dict[str, str]
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert await response.get_json() == expected


async def test_studio_errors_carry_the_request_id(client: QuartClient) -> None:
    response = await client.get("/v1/nothing", headers={"X-Request-Id": "r-1"})
    assert response.status_code == 404
    assert await response.get_json() == {
        "error": {"code": "not_found", "message": "not found", "requestId": "r-1"}
    }


async def test_method_not_allowed_keeps_the_shape_and_allow(client: QuartClient) -> None:
    response = await client.delete("/v1/health")
    assert response.status_code == 405
    assert (await response.get_json())["error"]["code"] == "invalid_request"
    assert "GET" in response.headers["Allow"]


def _app_with_probe_routes(tmp_path: Path, **env: str) -> Quart:
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path), **env})
    app = create_app(settings)

    @app.post("/api/v1/probe/echo")
    async def echo() -> dict[str, int]:
        return {"size": len(await request.get_data())}

    @app.post("/api/v1/probe/big")
    @body_limit(8 * 1024 * 1024)
    async def big() -> dict[str, int]:
        return {"size": len(await request.get_data())}

    @app.get("/api/v1/probe/boom")
    async def boom() -> str:
        raise RuntimeError("secret-internal-detail")

    @app.get("/api/v1/probe/limited")
    async def limited() -> str:
        raise ApiError(429, "slow down", headers={"Retry-After": "3"})

    return app


async def test_body_limit_default_and_per_route(tmp_path: Path) -> None:
    client = _app_with_probe_routes(tmp_path, MEDIAGATE_MAX_BODY_BYTES="2048").test_client()
    ok = await client.post("/api/v1/probe/echo", data=b"x" * 2048)
    assert ok.status_code == 200
    too_big = await client.post("/api/v1/probe/echo", data=b"x" * 2049)
    assert too_big.status_code == 413
    assert await too_big.get_json() == {"error": "request body too large"}
    bigger = await client.post("/api/v1/probe/big", data=b"x" * 100_000)
    assert bigger.status_code == 200


async def test_unexpected_errors_are_500_in_shape_without_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = _app_with_probe_routes(tmp_path).test_client()
    response = await client.get("/api/v1/probe/boom")
    assert response.status_code == 500
    body = await response.get_data(as_text=True)
    assert body == '{"error": "internal server error"}'
    assert "secret-internal-detail" not in body and "Traceback" not in body
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


async def test_api_error_headers_pass_through(tmp_path: Path) -> None:
    client = _app_with_probe_routes(tmp_path).test_client()
    response = await client.get("/api/v1/probe/limited")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate=2, burst=3, clock=lambda: now[0])
    assert [limiter.hit_now("ip").allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.hit_now("ip")
    assert not denied.allowed and denied.retry_after == pytest.approx(0.5)
    assert denied.retry_after_header == "1"
    assert limiter.hit_now("other").allowed  # keys are independent
    now[0] += 0.5
    assert limiter.hit_now("ip").allowed
    assert not limiter.hit_now("ip").allowed


def test_token_bucket_forgets_oldest_keys_beyond_its_bound() -> None:
    limiter = TokenBucketLimiter(rate=1, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.hit_now(key)
    assert limiter.hit_now("a").allowed  # "a" was evicted and starts full again


async def test_per_minute_zero_disables() -> None:
    limiter = per_minute(0)
    assert all([(await limiter.hit("x")).allowed for _ in range(1000)])


def test_client_ip_trusts_only_configured_proxies() -> None:
    headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.2"}
    assert client_ip("198.51.100.1", headers, []) == "198.51.100.1"
    proxies = parse_networks(["10.0.0.0/8"])
    assert client_ip("10.0.0.1", headers, proxies) == "203.0.113.9"
    assert client_ip("198.51.100.1", headers, proxies) == "198.51.100.1"


async def test_cors_star_and_echoed_origins() -> None:
    from quart import Response

    star = CorsPolicy("*")
    response = star.apply(Response(""), "https://a.example")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    listed = CorsPolicy("https://a.example, https://b.example")
    echoed = listed.apply(Response(""), "https://b.example")
    assert echoed.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in echoed.headers["Vary"]
    refused = listed.apply(Response(""), "https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused.headers
    preflight = listed.preflight("https://a.example")
    assert preflight.status_code == 204


def test_pagination_limits_and_cursors() -> None:
    assert parse_limit(None) == 50
    assert parse_limit("500") == 200
    for bad in ("0", "-3", "ten"):
        with pytest.raises(PaginationError):
            parse_limit(bad)
    codec = CursorCodec(b"k" * 32)
    cursor = codec.encode("std_0042")
    assert codec.decode(cursor) == "std_0042"
    flipped = cursor[:3] + ("A" if cursor[3] != "A" else "B") + cursor[4:]
    for tampered in (flipped, cursor + "x", "garbage", "", CursorCodec(b"j" * 32).encode("x")):
        with pytest.raises(PaginationError):
            codec.decode(tampered)


def test_logs_never_carry_secrets() -> None:
    redactor = Redactor(["configured-secret-value"])
    record = logging.makeLogRecord({
        "msg": "auth %s key %s url %s other %s",
        "args": ("Bearer abc.def", "sk_live_0123456789abcdef",
                 "/api/ws/x?t=p_eyJzZXNzaW9uIjoi.sig123&stream=a", "configured-secret-value"),
    })
    RedactingFilter(redactor).filter(record)
    text = record.getMessage()
    for secret in ("abc.def", "sk_live_0123456789abcdef", "p_eyJzZXNzaW9uIjoi",
                   "configured-secret-value"):
        assert secret not in text
    assert text.count(REDACTED) == 4
    assert "stream=a" in text


def test_server_log_has_no_secret(tmp_path: Path) -> None:
    import httpx

    from tests.server import start_server

    secret = "instance-secret-" + "z" * 24
    server = start_server(tmp_path / "data", env={
        "MEDIAGATE_SECRET_KEY": secret, "MEDIAGATE_LOG_FORMAT": "json"})
    try:
        httpx.get(server.base_url + "/v1/health?token=leaky-token-value",
                  headers={"Authorization": "Bearer sk_live_abcdefabcdefabcdef"})
    finally:
        assert server.stop() == 0
    log = server.log()
    assert '"logger": "mediagate.access"' in log
    for leaked in (secret, "leaky-token-value", "sk_live_abcdefabcdefabcdef"):
        assert leaked not in log


def test_request_paths_cannot_write_log_lines(tmp_path: Path) -> None:
    """The access log shows the percent-decoded path: its control characters are escaped
    (the fuzz runs logged paths with raw newlines, each a line a client wrote)."""
    import httpx

    from tests.server import start_server

    assert loggable_path("/a\nb\r\x85\u2028\x00c") == "/a\\nb\\r\\x85\\u2028\\x00c"
    assert loggable_path("/\n" * 150).endswith("...[100 more characters]")
    server = start_server(tmp_path / "data")
    try:
        httpx.get(server.base_url + "/v1/studios/x%0A2099-01-01 00:00:00 ERROR forged%0D%0A")
    finally:
        assert server.stop() == 0
    lines = server.log().splitlines()
    assert not any(line.startswith("2099-01-01") for line in lines)
    assert any("/v1/studios/x\\n2099-01-01 00:00:00 ERROR forged\\r\\n 401" in line
               for line in lines), lines[-5:]


def test_secrets_compare_in_constant_time_and_never_raise() -> None:
    from gateway.keys import secrets_equal

    assert secrets_equal("sit_abc", "sit_abc")
    assert secrets_equal(b"raw", "raw")
    assert not secrets_equal("sit_abd", "sit_abc")
    # hmac.compare_digest raises TypeError on non-ASCII str: a presented token must not
    for hostile in ("sit_é", "\udcff", "", "sit_abc\x00"):
        assert not secrets_equal(hostile, "sit_abc")
