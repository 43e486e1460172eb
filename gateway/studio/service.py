"""Studio domain logic (keys, studios, sources, destinations, go-live); no Quart imports."""

from __future__ import annotations

from gateway.settings import Settings


def write_enabled(settings: Settings) -> bool:
    """Mutating routes answer 503 `write_disabled` while PUBLIC_API_WRITE_ENABLED is off."""
    return settings.public_api_write_enabled
