from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokerage.helpers import Api, api_for, serve_punch
from tests.server import RunningServer


@pytest.fixture(scope="module")
def punch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server per test module (fast enough to share), no creation limit."""
    yield from serve_punch(tmp_path_factory.mktemp("punch"))


@pytest.fixture
def api(punch_server: RunningServer) -> Iterator[Api]:
    yield from api_for(punch_server)
