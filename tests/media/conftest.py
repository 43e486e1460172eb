from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aioice.ice
import pytest

from media import MediaConfig, MediaCore


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Gather ICE host candidates on 127.0.0.1 only (aioice skips loopback by default).

    Not autouse: modules opt in with ``pytestmark = pytest.mark.usefixtures("loopback_ice")``
    so tests of media/network.py keep aioice's real interface discovery.
    """
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    yield


@pytest.fixture
async def core(loopback_ice: None) -> AsyncIterator[MediaCore]:
    media_core = MediaCore(MediaConfig(stats_interval=0.5))
    await media_core.start()
    try:
        yield media_core
    finally:
        await media_core.stop()
