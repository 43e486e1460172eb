"""Signed outgoing (and incoming) HTTP payloads: `X-Mediagate-Signature: t=<unix>,v1=<hex>`.

v1 is HMAC-SHA256 over `<t>.<raw body>` with the endpoint's shared secret (the scheme
Stripe and GitHub users know). Receivers check it and reject timestamps outside a
tolerance; within it, the gateway's own inbound route also refuses a signature it has
already accepted (see `chat.ChatService.receive_inbound`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from gateway.keys import secrets_equal

HEADER = "X-Mediagate-Signature"
TOLERANCE_SECONDS = 300
REJECTED = f"missing or invalid {HEADER}"
"""The one answer to a request that is unsigned, wrongly signed, too old or a replay."""


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verified_at(secret: str, body: bytes, header: str | None,
                tolerance: int = TOLERANCE_SECONDS) -> int | None:
    """The signed timestamp, when `header` signs `body` with `secret` within `tolerance`."""
    if not header:
        return None
    pairs = [p.split("=", 1) for p in header.split(",") if "=" in p]
    try:
        t = int(dict(pairs).get("t", ""))
    except ValueError:
        return None
    if abs(time.time() - t) > tolerance:
        return None
    expected = signature_header(secret, body, t).split("v1=", 1)[1]
    if any(k == "v1" and secrets_equal(v, expected) for k, v in pairs):
        return t
    return None


def verify(secret: str, body: bytes, header: str | None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    return verified_at(secret, body, header, tolerance) is not None
