"""Host management domain logic (pairing, library, stats capture); no Quart imports."""

from __future__ import annotations

from gateway import __version__


def host_version() -> str:
    return __version__
