"""Request ids: the client's `X-Request-Id` echoed when sane, else `req_<hex>`."""

from __future__ import annotations

import re
import secrets

from quart import Quart, Response, g, request, websocket

HEADER = "X-Request-Id"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def current_request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        rid = g.request_id = new_request_id()
    return rid


def _accept(incoming: str) -> str:
    return incoming if _ACCEPTABLE.fullmatch(incoming) else new_request_id()


def install_request_ids(app: Quart) -> None:
    @app.before_request
    async def _assign() -> None:
        g.request_id = _accept(request.headers.get(HEADER, ""))

    @app.before_websocket
    async def _assign_websocket() -> None:
        g.request_id = _accept(websocket.headers.get(HEADER, ""))

    @app.after_request
    async def _echo(response: Response) -> Response:
        response.headers[HEADER] = current_request_id()
        return response

    @app.after_websocket
    async def _echo_refusal(response: Response | None) -> Response | None:
        """A handshake answered with an HTTP error carries the id too."""
        if response is not None:
            response.headers[HEADER] = current_request_id()
        return response
