from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.settings import Settings
from tests.pg import PostgresServer, start_postgres
from tests.server import RunningServer, start_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # Outside pytest's 0700 temp tree: the server runs as the `postgres` user.
    root = Path(tempfile.mkdtemp(prefix="mediagate-pg-"))
    server = start_postgres(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    """The app on a migrated SQLite database, started as if served."""
    import asyncio

    await asyncio.to_thread(upgrade, settings.database_url)
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data")
    yield running
    assert running.stop() == 0, running.log()
