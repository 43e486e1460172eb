"""Request body size limits: one default for the app, overridable per route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart import Quart, request

from gateway.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "_mediagate_body_limit"


def body_limit(max_bytes: int | None) -> Callable[[F], F]:
    """Per-route limit; `None` means the route streams and enforces its own."""

    def mark(view: F) -> F:
        setattr(view, _ATTRIBUTE, max_bytes)
        return view

    return mark


def install_body_limit(app: Quart, default: int) -> None:
    app.config["MAX_CONTENT_LENGTH"] = None

    @app.before_request
    async def _limit() -> None:
        view = app.view_functions.get(request.endpoint or "")
        limit = getattr(view, _ATTRIBUTE, default)
        if limit is None:
            return
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, "request body too large")
        # Without a Content-Length (chunked) Quart's body enforces the limit as data arrives
        # and raises RequestEntityTooLarge, rendered as the API's 413. Quart sizes the body
        # from app config only, so the per-route limit is set on it here.
        request.body._max_content_length = limit
        if len(await request.get_data(cache=True)) > limit:
            raise ApiError(413, "request body too large")
