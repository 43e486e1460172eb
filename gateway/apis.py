"""How an API is mounted: its blueprint, the paths it owns, and its error shape."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Blueprint

from gateway.errors import ErrorRenderer
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.state import GatewayState

Lifecycle = Callable[["GatewayState"], Awaitable[None]]
CommandInstaller = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


@dataclass(frozen=True)
class ApiMount:
    name: str
    create_blueprint: Callable[[Settings], Blueprint]
    render_error: ErrorRenderer
    prefixes: tuple[str, ...]
    """Path prefixes this API owns; no other API may route under them."""
    exact_paths: tuple[str, ...] = ()
    url_prefixes: tuple[str, ...] = ("",)
    """The blueprint is registered once per entry (Calls lives at `/v1` and at the root)."""
    start: Lifecycle | None = None
    """Runs once the database and media core are up (bootstrap rows, background tasks)."""
    stop: Lifecycle | None = None
    """Runs before the media core and database stop."""
    add_commands: CommandInstaller | None = None
    """Adds this API's admin subcommands to `mediagate` (each prints JSON)."""
