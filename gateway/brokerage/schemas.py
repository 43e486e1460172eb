"""Punch request/response shapes: errors are `{error: <ErrorCode>, message}`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from quart import Response

from gateway.brokerage.errors import PunchError
from gateway.brokerage.service import Created, CreateSession
from gateway.errors import ApiError, json_error

PUNCH_VERSION_HEADER = "Punch-Version"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LATENCY_RANGE = (20, 8000)
TTL_RANGE = (60, 86400)
DEFAULT_LATENCY = 200
MAX_STREAMS_IN_SPEC = 16

DEFAULT_CODES = {
    400: "INVALID_MESSAGE",
    401: "AUTH_FAILED",
    403: "AUTH_FAILED",
    404: "SESSION_EXPIRED",
    405: "INVALID_MESSAGE",
    409: "SESSION_EXISTS",
    413: "INVALID_MESSAGE",
    415: "INVALID_MESSAGE",
    426: "INVALID_MESSAGE",
    429: "RATE_LIMITED",
}


def render_error(error: ApiError) -> Response:
    code = error.code or DEFAULT_CODES.get(error.status, "SERVER_ERROR")
    return json_error({"error": code, "message": error.message}, error)


def api_error(error: PunchError) -> ApiError:
    return ApiError(error.status, error.message, code=error.code, headers=error.headers)


def health_body(version: str) -> dict[str, str]:
    return {"status": "ok", "version": version}


def _bad(message: str) -> PunchError:
    return PunchError(400, "INVALID_MESSAGE", message)


def _int_field(body: dict[str, Any], key: str, default: int, bounds: tuple[int, int]) -> int:
    value = body.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 300.0 is the integer 300
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{key} must be an integer")
    if not bounds[0] <= value <= bounds[1]:
        raise _bad(f"{key} must be between {bounds[0]} and {bounds[1]}")
    return value


def valid_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 64 and NAME_PATTERN.fullmatch(value) is not None


def parse_create(body: object, default_ttl: int) -> CreateSession:
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    name = body.get("name")
    if not valid_name(name):
        raise _bad("name must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', "
                   "starting with a letter or digit")
    streams = body.get("streams", [])
    if not isinstance(streams, list) or not all(valid_name(s) for s in streams):
        raise _bad("streams must be a list of stream names")
    if len(streams) > MAX_STREAMS_IN_SPEC:
        raise _bad(f"at most {MAX_STREAMS_IN_SPEC} streams")
    token = body.get("turnstileToken")
    if token is not None and not isinstance(token, str):
        raise _bad("turnstileToken must be a string")
    return CreateSession(
        name=str(name),
        streams=[str(s) for s in streams],
        latency=_int_field(body, "latency", DEFAULT_LATENCY, LATENCY_RANGE),
        ttl=_int_field(body, "ttl", default_ttl, TTL_RANGE),
        turnstile_token=token,
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def created_body(created: Created, base_url: str) -> dict[str, Any]:
    row = created.session
    return {
        "session": row.name,
        "token": created.token,
        "url": f"{base_url}/s/{row.name}",
        "qr": f"{base_url}/s/{row.name}/qr",
        "streams": created.streams,
        "latency": row.latency,
        "ttl": row.ttl,
        "state": row.state,
        "created": _iso(row.created_at),
    }
