"""Live-rooms domain logic (rooms, publishers, viewers); no Quart imports."""

from __future__ import annotations

HEALTHY = "ok"


def health_text() -> str:
    """`/healthz` answers `ok` while the process serves, as upstream."""
    return HEALTHY
