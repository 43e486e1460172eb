"""Over-long path segments end at the door: no id or file name any API serves is longer than
a file name may be (255 bytes), so a longer segment is a 404 before any route sees it (a route
handing it to the filesystem would fail with ENAMETOOLONG)."""

from __future__ import annotations

from quart import Quart, request, websocket

from gateway.errors import ApiError

MAX_SEGMENT_BYTES = 255


def over_long(path: str, limit: int = MAX_SEGMENT_BYTES) -> bool:
    return any(
        len(segment) > limit // 4 and len(segment.encode("utf-8", "surrogatepass")) > limit
        for segment in path.split("/")
    )


def install_path_limit(app: Quart) -> None:
    @app.before_request
    async def _check_request() -> None:
        if over_long(request.path):
            raise ApiError(404, "not found")

    @app.before_websocket
    async def _check_websocket() -> None:
        if over_long(websocket.path):
            raise ApiError(404, "not found")
