"""Request body size limits: one default for the app, overridable per route; and the rest of
an unread body drained before any early answer (a 413, a 401, ...) goes out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
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


Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Message, Receive, Send], Awaitable[None]]
DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_IDLE_SECONDS = 5.0


class _RequestBody:
    """Watches one request's body messages; discards their bytes once told to."""

    def __init__(self, receive: Receive, declared: int | None) -> None:
        self._receive = receive
        self.declared = declared
        self.done = asyncio.Event()
        self._arrived = asyncio.Event()
        self._discarding = False
        self._discarded = 0

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done.set()
        if self._discarding:
            self._discarded += len(message.get("body", b""))
            self._arrived.set()
            if message.get("body"):
                message = {**message, "body": b""}
        return message

    async def drain(self, max_bytes: int, idle_seconds: float) -> None:
        """Wait until the body has arrived (the app's own receiver reads it, now discarding),
        while it keeps coming and up to `max_bytes`."""
        if self.done.is_set() or (self.declared is not None and self.declared > max_bytes):
            return
        self._discarding = True
        while not self.done.is_set() and self._discarded <= max_bytes:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), idle_seconds)
            except TimeoutError:
                return


def _declared_length(scope: Message) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def drain_unread_bodies(app: AsgiApp, max_bytes: int = DRAIN_MAX_BYTES,
                        idle_seconds: float = DRAIN_IDLE_SECONDS) -> AsgiApp:
    """ASGI middleware. An HTTP/1.1 server that answers before the client has sent its whole
    body and then closes the connection leaves bytes unread in its socket; the kernel answers
    those with a reset, which can destroy the answer before the client reads it (a client
    uploading too much sees a reset instead of the 413). So a response starts only once the
    body has been read (and thrown away), within the bounds."""

    async def middleware(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = _RequestBody(receive, _declared_length(scope))

        async def send_after_body(message: Message) -> None:
            if message["type"] == "http.response.start":
                await body.drain(max_bytes, idle_seconds)
            await send(message)

        await app(scope, body.receive, send_after_body)

    return middleware
