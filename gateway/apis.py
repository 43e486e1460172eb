"""How an API is mounted: its blueprint, the paths it owns, and its error shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quart import Blueprint

from gateway.errors import ErrorRenderer
from gateway.settings import Settings


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
