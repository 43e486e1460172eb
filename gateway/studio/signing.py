"""Signed outgoing (and incoming) HTTP payloads: `X-Mediagate-Signature: t=<unix>,v1=<hex>`.

v1 is HMAC-SHA256 over `<t>.<raw body>` with the endpoint's shared secret (the scheme
Stripe and GitHub users know). Receivers check it and reject timestamps outside a
tolerance, which stops replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from gateway.keys import secrets_equal

HEADER = "X-Mediagate-Signature"
TOLERANCE_SECONDS = 300


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str | None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = signature_header(secret, body, t).split("v1=", 1)[1]
    return any(secrets_equal(v, expected) for k, v in
               (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1")
