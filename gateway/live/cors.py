"""Upstream's CORS on top of the shared `CorsPolicy`.

`ALLOWED_ORIGIN=*` sends `*`; otherwise an origin equal to it, or whose host is it, is
echoed (with `Vary: Origin` and `Access-Control-Allow-Credentials: true`). A preflight for
the RFC 9725 session resources (`DELETE`/`PATCH`) is told those methods too, and clients
may read `Location`, `ETag` and `Link`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from quart import Response, request

from gateway.cors import CorsPolicy, is_preflight

RESOURCE_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


@dataclass(frozen=True)
class LiveCorsPolicy(CorsPolicy):
    allow_methods: str = "GET, POST, OPTIONS"
    allow_headers: str = "Content-Type, Authorization, X-Auth-Token"
    expose_headers: str = "Location, ETag, Link"

    def origin_header(self, origin: str | None) -> str | None:
        allowed = self.allowed_origin.strip()
        if allowed == "*":
            return "*"
        if not origin:
            return None
        host = urlsplit(origin).hostname if "://" in origin else origin
        return origin if allowed in (origin, host) else None

    def apply(self, response: Response, origin: str | None) -> Response:
        response = super().apply(response, origin)
        if self.allowed_origin.strip() != "*" and "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        wanted = request.headers.get("Access-Control-Request-Method", "").upper()
        if (is_preflight() and wanted in ("PATCH", "DELETE")
                and "Access-Control-Allow-Methods" in response.headers):
            response.headers["Access-Control-Allow-Methods"] = RESOURCE_METHODS
            response.headers["Access-Control-Allow-Headers"] = self.allow_headers + ", If-Match"
        return response
