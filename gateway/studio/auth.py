"""API-key authentication, per-key rate limiting, scope checks and write gating per route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from quart import g, request

from gateway.errors import ApiError
from gateway.ratelimit import RateLimiter, enforce
from gateway.state import gateway_state
from gateway.studio import apikeys
from gateway.studio.apikeys import Principal
from gateway.studio.service import StudioService, write_enabled

P = ParamSpec("P")
R = TypeVar("R")


def studio_service() -> StudioService:
    return gateway_state().services["studio"]


def limiter() -> RateLimiter:
    return gateway_state().services["studio.ratelimit"]


def presented_key() -> str | None:
    """`Authorization: Bearer <key>` or the `X-API-Key` alias."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    alias = request.headers.get("X-API-Key", "").strip()
    return alias or None


async def authenticate() -> Principal:
    key = presented_key()
    if key is None:
        raise ApiError(401, "missing API key: send Authorization: Bearer sk_live_... "
                       "or X-API-Key", code="invalid_key")
    principal = await apikeys.authenticate(gateway_state().db, key)
    if principal is None:
        raise ApiError(401, "invalid API key", code="invalid_key")
    await enforce(limiter(), principal.key_id, message="rate limit exceeded for this key",
                  code="rate_limited")
    return principal


def check_write_enabled() -> None:
    if not write_enabled(gateway_state().settings):
        raise ApiError(503, "write endpoints are disabled (PUBLIC_API_WRITE_ENABLED is off)",
                       code="write_disabled")


def require(scope: str, *, write: bool = False) -> Callable[
    [Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]
]:
    """Authenticate, rate-limit, check `scope`, and (for mutating routes) the write gate."""

    def decorator(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(handler)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = await authenticate()
            if scope not in principal.scopes:
                raise ApiError(403, f"this key lacks the {scope} scope",
                               code="insufficient_scope", extra={"requiredScope": scope})
            if write:
                check_write_enabled()
            g.principal = principal
            return await handler(*args, **kwargs)

        return wrapper

    return decorator


def principal() -> Principal:
    value: Any = g.principal
    return value
