from __future__ import annotations

from pathlib import Path

import pytest
from quart import Quart

from gateway.settings import Settings
from tests.calls.helpers import APP_ID, APP_SECRET, CallsApi


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path / "data"),
        "CALLS_APP_ID": APP_ID,
        "CALLS_APP_SECRET": APP_SECRET,
    })


@pytest.fixture
def api(app: Quart) -> CallsApi:
    return CallsApi(app.test_client())
