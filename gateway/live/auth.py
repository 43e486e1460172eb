"""Live-rooms authorization, exactly as upstream.

Order for a room: its `ROOM_TOKENS` entry (which then replaces `AUTH_TOKEN`), else
`AUTH_TOKEN`, each also accepting a valid JWT; else JWT alone; else open. Admin routes take
`ADMIN_TOKEN` or a JWT with `role=admin` / `admin: true|1`, and are closed when neither is
configured. Recordings (`/api/records`, `/records/`) are open only while no auth at all is
configured, else admin-only (as upstream now has them; with room or global tokens alone, set
`ADMIN_TOKEN` to reach them). A token is read from `X-Auth-Token` when present, else
`Authorization: Bearer`; JWTs only from `Authorization: Bearer`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from gateway.keys import secrets_equal
from gateway.settings import Settings

JWT_ALGORITHMS = ["HS256", "HS384", "HS512"]
LEEWAY_SECONDS = 30


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _token_matches(headers: Mapping[str, str], expected: str) -> bool:
    given = headers.get("X-Auth-Token", "")
    if not given:
        given = _bearer(headers) or ""
        if not given:
            return False
    return secrets_equal(given, expected)


class Authorizer:
    def __init__(self, settings: Settings) -> None:
        self._room_tokens = {
            room: token.get_secret_value()
            for room, token in settings.room_tokens.items()
            if token.get_secret_value()
        }
        self._auth_token = settings.auth_token.get_secret_value() if settings.auth_token else ""
        self._admin_token = settings.admin_token.get_secret_value() if settings.admin_token else ""
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
        with warnings.catch_warnings():  # joserfc warns about short HMAC keys
            warnings.simplefilter("ignore")
            self._jwt_key = OctKey.import_key(secret) if secret else None
        self._audience = settings.jwt_audience or None

    @property
    def enabled(self) -> bool:
        return bool(self._auth_token or self._room_tokens or self._jwt_key)

    def protects(self, room: str) -> bool:
        """Whether `room_ok` asks a credential for this room (else the room is open)."""
        return room in self._room_tokens or bool(self._auth_token) or self._jwt_key is not None

    @property
    def configured(self) -> bool:
        """Any live auth at all: room, global or admin tokens, or a JWT secret."""
        return self.enabled or bool(self._admin_token)

    def records_ok(self, headers: Mapping[str, str]) -> bool:
        return not self.configured or self.admin_ok(headers)

    def room_ok(self, headers: Mapping[str, str], room: str) -> bool:
        if not self.protects(room):
            return True
        room_token = self._room_tokens.get(room)
        if room_token:
            return _token_matches(headers, room_token) or self._jwt_room_ok(headers, room)
        if self._auth_token:
            return _token_matches(headers, self._auth_token) or self._jwt_room_ok(headers, room)
        return self._jwt_room_ok(headers, room)

    def admin_ok(self, headers: Mapping[str, str]) -> bool:
        if self._admin_token and _token_matches(headers, self._admin_token):
            return True
        claims = self._claims(headers)
        if claims is None:
            return False
        role = claims.get("role")
        if isinstance(role, str) and role.lower() == "admin":
            return True
        admin = claims.get("admin")
        if isinstance(admin, bool):
            return admin
        return isinstance(admin, int | float) and admin == 1

    def _jwt_room_ok(self, headers: Mapping[str, str], room: str) -> bool:
        claims = self._claims(headers)
        if claims is None:
            return False
        claimed = claims.get("room")
        if claimed in (None, ""):
            return True
        return claimed == room

    def _claims(self, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """Verified claims of the bearer JWT, or None."""
        if self._jwt_key is None:
            return None
        token = _bearer(headers)
        if not token or token.count(".") != 2:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                decoded = jwt.decode(token, self._jwt_key, algorithms=JWT_ALGORITHMS)
            options: dict[str, Any] = {"exp": {"essential": True}}
            if self._audience:
                options["aud"] = {"essential": True, "value": self._audience}
            jwt.JWTClaimsRegistry(leeway=LEEWAY_SECONDS, **options).validate(decoded.claims)
        except (JoseError, ValueError, TypeError):
            return None
        claims = decoded.claims
        issued = claims.get("iat")
        if issued is not None and (
            not isinstance(issued, int | float) or issued > time.time() + LEEWAY_SECONDS
        ):
            return None
        return claims
