"""Reading a JSON request body: strict UTF-8 JSON (RFC 8259) or a 400.

The 400 is an `ApiError`, so each API renders it in its own shape (its renderer picks the
code for a 400 unless `code` is given). A body that is not UTF-8, not JSON, nested past
the parser's recursion limit, or uses the non-standard `NaN`/`Infinity` never becomes a 500.
"""

from __future__ import annotations

import json
from typing import Any

from quart import request

from gateway.errors import ApiError

NOT_JSON = "the request body is not valid UTF-8 JSON"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, *, code: str | None = None) -> Any:
    if not raw:
        raise ApiError(400, "a JSON request body is required", code=code)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, NOT_JSON, code=code) from None


async def json_body(*, code: str | None = None) -> Any:
    """The current request's body as JSON, whatever its Content-Type says."""
    return parse_json(await request.get_data(), code=code)
