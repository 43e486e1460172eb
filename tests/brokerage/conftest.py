from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokerage.helpers import Api
from tests.server import RunningServer, start_server


@pytest.fixture(scope="module")
def punch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server per test module (fast enough to share), no creation limit."""
    root: Path = tmp_path_factory.mktemp("punch")
    running = start_server(root / "data", env={"PUNCH_RATE_LIMIT": "0"})
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture
def api(punch_server: RunningServer) -> Iterator[Api]:
    client = Api(punch_server.base_url)
    yield client
    client.close()
