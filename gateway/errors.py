"""Errors raised anywhere in a request, rendered in the shape of the API that was called.

Routes and shared machinery raise `ApiError(status, message, code=...)`. Which shape the
client sees (Punch `{error, message}`, Calls `{errorCode, errorDescription}`, ...) is
decided once, by the API that owns the request path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from quart import Quart, Response, has_websocket_context, request, websocket
from werkzeug.exceptions import HTTPException
from werkzeug.routing.exceptions import WebsocketMismatch

from gateway.logs import loggable_path

log = logging.getLogger("mediagate.errors")


class ApiError(Exception):
    """A failure with an HTTP status; `code` is the API's own code when it has one."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class ErrorRenderer(Protocol):
    def __call__(self, error: ApiError) -> Response: ...


@dataclass
class ErrorRouting:
    """Maps request paths to the renderer of the API that owns them."""

    default: ErrorRenderer
    by_prefix: list[tuple[str, ErrorRenderer]] = field(default_factory=list)
    exact: dict[str, ErrorRenderer] = field(default_factory=dict)

    def add(self, renderer: ErrorRenderer, *, prefixes: tuple[str, ...] = (),
            exact: tuple[str, ...] = ()) -> None:
        self.by_prefix.extend((prefix, renderer) for prefix in prefixes)
        self.by_prefix.sort(key=lambda item: len(item[0]), reverse=True)
        self.exact.update(dict.fromkeys(exact, renderer))

    def renderer_for(self, path: str) -> ErrorRenderer:
        if path in self.exact:
            return self.exact[path]
        for prefix, renderer in self.by_prefix:
            if path.startswith(prefix):
                return renderer
        return self.default


def json_error(body: object, error: ApiError) -> Response:
    """A JSON error response carrying the error's status and headers."""
    response = Response(
        json.dumps(body), status=error.status, content_type="application/json"
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def text_error(text: str, error: ApiError) -> Response:
    response = Response(text + "\n", status=error.status, content_type="text/plain; charset=utf-8")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def plain_json_error(error: ApiError) -> Response:
    """`{"error": message}`: the fallback shape for paths no API owns."""
    return json_error({"error": error.message}, error)


def current_path() -> str:
    """The path of the HTTP request or WebSocket handshake being handled."""
    return websocket.path if has_websocket_context() else request.path


def _from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    if isinstance(exc, WebsocketMismatch):
        if has_websocket_context():
            return ApiError(400, "this path does not accept WebSocket upgrades")
        return ApiError(400, "this path only accepts WebSocket upgrades")
    messages = {
        404: "not found",
        405: "method not allowed",
        413: "request body too large",
        415: "unsupported media type",
    }
    headers: dict[str, str] = {}
    if status == 405:
        response = exc.get_response()
        allow = response.headers.get("Allow")
        if allow:
            headers["Allow"] = allow
    return ApiError(status, messages.get(status, (exc.description or exc.name).lower()),
                    headers=headers)


def install_error_handlers(app: Quart, routing: ErrorRouting,
                           on_render: Callable[[ApiError], None] | None = None) -> None:
    """Every error leaves the app through here, in the owning API's shape."""

    def render(error: ApiError) -> Response:
        if on_render is not None:
            on_render(error)
        return routing.renderer_for(current_path())(error)

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return render(error)

    @app.errorhandler(HTTPException)
    async def _http_exception(exc: HTTPException) -> Response:
        return render(_from_http_exception(exc))

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        method = "WEBSOCKET" if has_websocket_context() else request.method
        log.exception("unhandled error on %s %s", method, loggable_path(current_path()))
        return render(ApiError(500, "internal server error"))
