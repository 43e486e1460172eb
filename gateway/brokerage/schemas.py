"""Punch response shapes: errors are `{error: <ErrorCode>, message}`."""

from __future__ import annotations

from quart import Response

from gateway.errors import ApiError, json_error

PUNCH_VERSION_HEADER = "Punch-Version"

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


def health_body(version: str) -> dict[str, str]:
    return {"status": "ok", "version": version}
