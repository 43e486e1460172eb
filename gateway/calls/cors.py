"""Calls CORS: any origin may call the API from a browser (the official examples do),
echoed back with `vary: Origin` as upstream does."""

from __future__ import annotations

from quart import Response

from gateway.cors import CorsPolicy


class CallsCors(CorsPolicy):
    def __init__(self) -> None:
        super().__init__(
            allowed_origin="*",
            allow_methods="GET, POST, PUT, OPTIONS",
            allow_headers="Content-Type, Authorization",
            max_age=86400,
        )

    def origin_header(self, origin: str | None) -> str | None:
        return origin or None

    def apply(self, response: Response, origin: str | None) -> Response:
        response.vary.add("Origin")
        return super().apply(response, origin)
