"""Studio response shapes: the `{error: {code, message, requestId}}` envelope."""

from __future__ import annotations

from quart import Response

from gateway.errors import ApiError, json_error
from gateway.requestid import current_request_id

DEFAULT_CODES = {
    400: "invalid_request",
    401: "invalid_key",
    403: "insufficient_scope",
    404: "not_found",
    405: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    429: "rate_limited",
    503: "write_disabled",
}


def render_error(error: ApiError) -> Response:
    body: dict[str, object] = {
        "code": error.code or DEFAULT_CODES.get(error.status, "internal_error"),
        "message": error.message,
        "requestId": current_request_id(),
    }
    body.update(error.extra)
    return json_error({"error": body}, error)


def health_body(write_enabled: bool) -> dict[str, object]:
    return {"status": "ok", "writeEnabled": write_enabled}
