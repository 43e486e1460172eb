"""Calls apps: an id plus a secret that is stored only as a salted PBKDF2 hash.

Verification compares in constant time; a verified (app, secret) pair is remembered for a
short while so 50 calls per second per session do not each pay for PBKDF2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from gateway.calls.models import CallsApp
from gateway.db import Database

ITERATIONS = 60_000
VERIFIED_TTL = 60.0


@dataclass(frozen=True)
class AppInfo:
    id: str
    name: str | None
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {"appId": self.id, "name": self.name, "createdAt": self.created_at.isoformat()}


def new_app_id() -> str:
    return uuid.uuid4().hex


def new_app_secret() -> str:
    return secrets.token_hex(32)


def hash_secret(secret: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return "$".join((
        "pbkdf2_sha256",
        str(iterations),
        base64.b64encode(salt).decode(),
        base64.b64encode(digest).decode(),
    ))


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", secret.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


def _info(row: CallsApp) -> AppInfo:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return AppInfo(row.id, row.name, created)


class AppStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: OrderedDict[tuple[str, str, bytes], float] = OrderedDict()

    async def create(self, *, name: str | None = None, app_id: str | None = None,
                     secret: str | None = None) -> tuple[AppInfo, str]:
        secret = secret or new_app_secret()
        row = CallsApp(
            id=app_id or new_app_id(),
            name=name,
            secret_hash=hash_secret(secret),
            created_at=datetime.now(UTC),
        )
        async with self.db.session() as session:
            if await session.get(CallsApp, row.id) is not None:
                raise ValueError(f"calls app {row.id} exists")
            session.add(row)
        return _info(row), secret

    async def ensure(self, app_id: str, secret: str, *, name: str | None = None) -> AppInfo:
        """Create the app, or set its secret when it differs (the env bootstrap)."""
        async with self.db.session() as session:
            row = await session.get(CallsApp, app_id)
            if row is None:
                row = CallsApp(id=app_id, name=name, secret_hash=hash_secret(secret),
                               created_at=datetime.now(UTC))
                session.add(row)
            elif not verify_secret(secret, row.secret_hash):
                row.secret_hash = hash_secret(secret)
            return _info(row)

    async def list(self) -> list[AppInfo]:
        async with self.db.session() as session:
            rows = (await session.scalars(select(CallsApp).order_by(CallsApp.created_at))).all()
            return [_info(row) for row in rows]

    async def delete(self, app_id: str) -> bool:
        async with self.db.session() as session:
            row = await session.get(CallsApp, app_id)
            if row is None:
                return False
            await session.delete(row)
            return True

    async def authenticate(self, app_id: str, secret: str) -> bool:
        """True when `secret` is the secret of app `app_id` (which must exist)."""
        async with self.db.session() as session:
            row = await session.get(CallsApp, app_id)
        if row is None:
            return False  # app ids are not secret: they are in every client's URLs
        key = (app_id, row.secret_hash, hashlib.sha256(secret.encode()).digest())
        now = time.monotonic()
        seen = self._verified.get(key)
        if seen is not None and now - seen < VERIFIED_TTL:
            return True
        if not verify_secret(secret, row.secret_hash):
            return False
        self._verified[key] = now
        self._verified.move_to_end(key)
        while len(self._verified) > 10_000:
            self._verified.popitem(last=False)
        return True
