from __future__ import annotations

from quart import Blueprint

from gateway.settings import Settings


def create_blueprint(settings: Settings) -> Blueprint:
    """Routes are written as `/apps/...`; the app mounts them at `/v1` and at the root."""
    return Blueprint("calls", __name__)
