"""What an admin subcommand of `mediagate` gets: settings, the database, the instance secret."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.db import Database
from gateway.keys import InstanceSecret, load_or_create_secret
from gateway.settings import Settings


@dataclass
class AdminContext:
    settings: Settings
    db: Database
    secret: InstanceSecret


AdminHandler = Callable[[AdminContext, argparse.Namespace], Awaitable[Any]]


async def run_admin(settings: Settings, handler: AdminHandler, args: argparse.Namespace) -> Any:
    """Run one admin command against the (already migrated) database; returns its JSON."""
    secret = load_or_create_secret(
        settings.data_dir,
        settings.secret_key.get_secret_value() if settings.secret_key else None,
    )
    db = Database(settings.database_url)
    try:
        return await handler(AdminContext(settings, db, secret), args)
    finally:
        await db.close()
