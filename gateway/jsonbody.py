"""JSON request bodies, parsed strictly: UTF-8 only, standard JSON only (no NaN/Infinity),
bounded nesting, and no lone UTF-16 surrogates in any string (they cannot be stored or
re-encoded). A bad body is never a 500: `parse_json` raises `InvalidJson`, `json_body` turns
it into a 400 `ApiError` that each API renders in its own shape."""

from __future__ import annotations

import json
from typing import Any

from quart import request

from gateway.errors import ApiError

MAX_DEPTH = 64
NOT_JSON = "the request body is not valid UTF-8 JSON"


class InvalidJson(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise InvalidJson(f"{name} is not JSON")


def _check(value: Any) -> None:
    """Walks the parsed value without recursion: nesting depth and encodable strings."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidJson("a string holds a lone UTF-16 surrogate") from None
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidJson(f"nested deeper than {MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constants)
    except InvalidJson:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(str(exc)[:200]) from None
    _check(value)
    return value


async def json_body(*, code: str | None = None) -> Any:
    """The current request's body as JSON, whatever its Content-Type says; a missing or bad
    body is a 400 (`code` is the API's own error code when its renderer wants one)."""
    raw = await request.get_data()
    if not raw:
        raise ApiError(400, "a JSON request body is required", code=code)
    try:
        return parse_json(raw)
    except InvalidJson:
        raise ApiError(400, NOT_JSON, code=code) from None
