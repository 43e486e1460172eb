"""Live-rooms response shapes, as upstream: JSON `{error}`, but plain text for 401 and 429."""

from __future__ import annotations

from quart import Response

from gateway.errors import ApiError, json_error, text_error

PLAIN_TEXT_STATUSES = {401: "unauthorized", 429: "too many requests"}


def render_error(error: ApiError) -> Response:
    if error.status in PLAIN_TEXT_STATUSES:
        return text_error(PLAIN_TEXT_STATUSES[error.status], error)
    return json_error({"error": error.message}, error)
