"""JSON request bodies, parsed strictly: UTF-8 only, standard JSON only (no NaN/Infinity),
bounded nesting, and no lone UTF-16 surrogates in any string (they cannot be stored or
re-encoded). Every API maps `InvalidJson` to its own 400."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


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
