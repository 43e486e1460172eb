from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def http(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the module's `live_server`."""
    server = request.getfixturevalue("live_server")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client
