"""Calls response shapes: errors are `{errorCode, errorDescription}`."""

from __future__ import annotations

from quart import Response

from gateway.errors import ApiError, json_error

DEFAULT_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


def render_error(error: ApiError) -> Response:
    code = error.code or DEFAULT_CODES.get(error.status, "internal_error")
    return json_error({"errorCode": code, "errorDescription": error.message}, error)
