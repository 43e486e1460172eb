"""Punch tokens: `p_<base64url(JSON payload)>.<base64url(HMAC-SHA256 over the payload part)>`.

Verification is stateless: any replica holding the key can check a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Literal

PREFIX = "p_"
Role = Literal["admin", "peer"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenError(Exception):
    """The token is missing, malformed, forged or expired (HTTP 401)."""

    code = "AUTH_FAILED"


class TokenExpired(TokenError):
    """A genuine token past its `exp`: its session's TTL is over."""

    code = "SESSION_EXPIRED"


@dataclass(frozen=True)
class Claims:
    session: str
    role: Role
    exp: int
    stream: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def payload(self) -> dict[str, object]:
        body: dict[str, object] = {"session": self.session, "role": self.role}
        if self.stream is not None:
            body["stream"] = self.stream
        body["exp"] = self.exp
        return body


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise TokenError("token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("token is not base64url") from None


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload_part: str) -> bytes:
        return hmac.new(self._key, payload_part.encode("ascii"), hashlib.sha256).digest()

    def sign(self, claims: Claims) -> str:
        payload_part = _b64encode(
            json.dumps(claims.payload(), separators=(",", ":")).encode("utf-8")
        )
        return f"{PREFIX}{payload_part}.{_b64encode(self._mac(payload_part))}"

    def verify(self, token: str | None, now: float) -> Claims:
        if not token:
            raise TokenError("missing token")
        if not token.startswith(PREFIX) or token.count(".") != 1:
            raise TokenError("malformed token")
        payload_part, _, signature_part = token[len(PREFIX):].partition(".")
        signature = _b64decode(signature_part)
        if not hmac.compare_digest(signature, self._mac(payload_part)):
            raise TokenError("invalid token signature")
        try:
            payload = json.loads(_b64decode(payload_part))
        except (ValueError, UnicodeDecodeError):
            raise TokenError("malformed token payload") from None
        claims = _claims(payload)
        if claims.exp <= now:
            raise TokenExpired("token expired: the session's lifetime is over")
        return claims


def _claims(payload: object) -> Claims:
    if not isinstance(payload, dict):
        raise TokenError("malformed token payload")
    session, role, exp = payload.get("session"), payload.get("role"), payload.get("exp")
    stream = payload.get("stream")
    valid = (
        isinstance(session, str) and _NAME.match(session)
        and role in ("admin", "peer")
        and isinstance(exp, int) and not isinstance(exp, bool)
        and (stream is None if role == "admin" else isinstance(stream, str))
    )
    if not valid:
        raise TokenError("malformed token payload")
    return Claims(session=session, role=role, exp=exp, stream=stream)  # type: ignore[arg-type]
