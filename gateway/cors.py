"""CORS, configured per API and applied to that API's blueprint."""

from __future__ import annotations

from dataclasses import dataclass

from quart import Blueprint, Response, request


@dataclass(frozen=True)
class CorsPolicy:
    allowed_origin: str
    """`*`, or a comma-separated list of origins echoed back when they match."""
    allow_methods: str = "GET, POST, OPTIONS"
    allow_headers: str = "Content-Type, Authorization"
    expose_headers: str = ""
    max_age: int = 600

    def origin_header(self, origin: str | None) -> str | None:
        if self.allowed_origin.strip() == "*":
            return "*"
        allowed = {item.strip() for item in self.allowed_origin.split(",") if item.strip()}
        return origin if origin in allowed else None

    def apply(self, response: Response, origin: str | None) -> Response:
        value = self.origin_header(origin)
        if value != "*":
            response.vary.add("Origin")
        if value is None:
            return response
        response.headers["Access-Control-Allow-Origin"] = value
        response.headers["Access-Control-Allow-Methods"] = self.allow_methods
        response.headers["Access-Control-Allow-Headers"] = self.allow_headers
        if self.expose_headers:
            response.headers["Access-Control-Expose-Headers"] = self.expose_headers
        return response

    def preflight(self, origin: str | None) -> Response:
        response = self.apply(Response("", status=204), origin)
        response.headers["Access-Control-Max-Age"] = str(self.max_age)
        return response


def is_preflight() -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def install_cors(blueprint: Blueprint, policy: CorsPolicy) -> None:
    """Answer preflights and decorate every response of the blueprint."""

    @blueprint.before_request
    async def _preflight() -> Response | None:
        if is_preflight():
            return policy.preflight(request.headers.get("Origin"))
        return None

    @blueprint.after_request
    async def _decorate(response: Response) -> Response:
        return policy.apply(response, request.headers.get("Origin"))
