"""API keys: `sk_live_` + random, shown once, stored as a SHA-256 hash with owner and scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from gateway.db import Database
from gateway.studio.ids import new_id
from gateway.studio.models import StudioApiKey

KEY_PREFIX = "sk_live_"
ALL_SCOPES: tuple[str, ...] = (
    "studios:read",
    "studios:write",
    "sources:read",
    "sources:write",
    "destinations:read",
    "destinations:write",
    "stream:read",
    "stream:golive",
    "chat:read",
    "chat:send",
    "connections:read",
    "connections:write",
    "media:read",
    "media:write",
    "webhooks:manage",
)
BOOTSTRAP_OWNER = "bootstrap"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, its owner (every resource is owned by one) and scopes."""

    key_id: str
    owner: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str
    owner: str
    scopes: tuple[str, ...]
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "key": self.key,
            "owner": self.owner,
            "scopes": list(self.scopes),
            "createdAt": self.created_at.isoformat(),
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and 16 <= len(value) <= 200


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {' '.join(ALL_SCOPES)}")
    return tuple(s for s in ALL_SCOPES if s in scopes)


async def create_key(db: Database, owner: str, scopes: list[str] | tuple[str, ...],
                     *, key: str | None = None) -> IssuedKey:
    if not owner or len(owner) > 200:
        raise ValueError("owner must be 1-200 characters")
    ordered = check_scopes(scopes)
    if not ordered:
        raise ValueError("a key needs at least one scope")
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = StudioApiKey(id=new_id("key"), key_hash=hash_key(key), prefix=key[:12], owner=owner,
                       scopes=" ".join(ordered), created_at=now)
    async with db.session() as session:
        session.add(row)
    return IssuedKey(row.id, key, owner, ordered, now)


async def ensure_bootstrap_key(db: Database, key: str) -> None:
    """That exact key exists, unrevoked, with every scope (the owner stays as first created)."""
    async with db.session() as session:
        row = (await session.execute(
            select(StudioApiKey).where(StudioApiKey.key_hash == hash_key(key))
        )).scalar_one_or_none()
        if row is None:
            session.add(StudioApiKey(
                id=new_id("key"), key_hash=hash_key(key), prefix=key[:12],
                owner=BOOTSTRAP_OWNER, scopes=" ".join(ALL_SCOPES), created_at=datetime.now(UTC),
            ))
        else:
            row.scopes = " ".join(ALL_SCOPES)
            row.revoked_at = None


async def authenticate(db: Database, key: str) -> Principal | None:
    if not looks_like_key(key):
        return None
    async with db.session() as session:
        row = (await session.execute(
            select(StudioApiKey).where(StudioApiKey.key_hash == hash_key(key))
        )).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.id, row.owner, frozenset(row.scopes.split()))


async def list_keys(db: Database) -> list[dict[str, object]]:
    async with db.session() as session:
        rows = (await session.execute(select(StudioApiKey).order_by(StudioApiKey.id))).scalars()
        return [
            {"id": r.id, "prefix": r.prefix, "owner": r.owner, "scopes": r.scopes.split(),
             "createdAt": r.created_at.isoformat(),
             "revokedAt": r.revoked_at.isoformat() if r.revoked_at else None}
            for r in rows
        ]


async def revoke_key(db: Database, key_id: str) -> bool:
    async with db.session() as session:
        row = await session.get(StudioApiKey, key_id)
        if row is None:
            return False
        row.revoked_at = row.revoked_at or datetime.now(UTC)
        return True
