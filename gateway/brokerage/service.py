"""Punch domain logic (sessions, tokens, signalling) lives here; no Quart imports."""

from __future__ import annotations

from gateway import __version__


def service_version() -> str:
    """The version reported in `/api/health` and the `Punch-Version` header."""
    return __version__
