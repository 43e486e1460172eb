"""Keyset pagination with opaque, signed cursors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PaginationError(ValueError):
    pass


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """Default when absent, clamped to the maximum; below 1 or non-numeric (an empty value
    too) is an error."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PaginationError("limit must be an integer") from None
    if value < 1:
        raise PaginationError("limit must be at least 1")
    return min(value, maximum)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CursorCodec:
    """Cursors carry the last key seen, signed so that a tampered cursor is refused."""

    key: bytes

    def encode(self, last_key: str) -> str:
        payload = json.dumps({"k": last_key}, separators=(",", ":")).encode()
        signature = hmac.new(self.key, payload, hashlib.sha256).digest()[:12]
        return _b64(payload) + "." + _b64(signature)

    def decode(self, cursor: str) -> str:
        try:
            payload_part, signature_part = cursor.split(".")
            payload = _unb64(payload_part)
            signature = _unb64(signature_part)
        except ValueError:
            raise PaginationError("invalid cursor") from None
        expected = hmac.new(self.key, payload, hashlib.sha256).digest()[:12]
        if not hmac.compare_digest(signature, expected):
            raise PaginationError("invalid cursor")
        try:
            last_key = json.loads(payload)["k"]
        except (ValueError, KeyError, TypeError):
            raise PaginationError("invalid cursor") from None
        if not isinstance(last_key, str):
            raise PaginationError("invalid cursor")
        return last_key
