"""Migrations and the database layer, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from gateway.db import Database
from gateway.instance import register_instance
from gateway.keys import load_or_create_secret
from gateway.migrate import downgrade, upgrade
from gateway.model_registry import metadata
from tests.pg import PostgresServer
from tests.server import start_server


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await db.close()


async def _schema_drift(url: str) -> list[object]:
    db = Database(url)
    try:
        async with db.engine.connect() as connection:
            return await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await db.close()


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    assert {"instance", "secret_meta", "alembic_version"} <= await _tables(database_url)
    await asyncio.to_thread(downgrade, database_url)
    assert await _tables(database_url) <= {"alembic_version"}
    await asyncio.to_thread(upgrade, database_url)
    assert {"instance", "secret_meta"} <= await _tables(database_url)


async def test_models_match_migrations(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    assert await _schema_drift(database_url) == []


async def test_instance_identity_is_stable(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    secret = load_or_create_secret(tmp_path, None)
    db = Database(database_url)
    try:
        first = await register_instance(db, secret)
        second = await register_instance(db, secret)
        assert first == second
        async with db.session() as session:
            row = (await session.execute(text("SELECT fingerprint FROM secret_meta"))).one()
        assert row.fingerprint == secret.fingerprint
        assert secret.value.decode() not in row.fingerprint
    finally:
        await db.close()


async def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with db.engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
        assert journal == "wal"
        assert foreign_keys == 1
    finally:
        await db.close()


def test_generated_secret_is_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path, None)
    assert first.source == "generated"
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600
    again = load_or_create_secret(tmp_path, None)
    assert again.value == first.value and again.source == "file"
    configured = load_or_create_secret(tmp_path, "x" * 32)
    assert configured.source == "env" and configured.value == b"x" * 32
    assert first.derive("a") != first.derive("b")


def test_serve_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database()
    server = start_server(tmp_path / "data", env={"MEDIAGATE_DATABASE_URL": url})
    try:
        for path in ("/api/health", "/api/v1/health", "/healthz", "/v1/health"):
            assert httpx.get(server.base_url + path).status_code == 200
    finally:
        assert server.stop() == 0, server.log()
    assert {"instance", "secret_meta"} <= asyncio.run(_tables(url))
    assert not (tmp_path / "data" / "mediagate.db").exists()


def test_migrate_command_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    url = postgres.create_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    env.update({"MEDIAGATE_DATA_DIR": str(tmp_path), "MEDIAGATE_DATABASE_URL": url})
    result = subprocess.run([sys.executable, "-m", "gateway", "migrate"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "instance" in asyncio.run(_tables(url))


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.pg import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    env.update({
        "MEDIAGATE_DATA_DIR": str(tmp_path),
        "MEDIAGATE_DATABASE_URL": f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/x",
    })
    result = subprocess.run([sys.executable, "-m", "gateway", "migrate"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "database migration failed" in result.stderr
    assert "Traceback" not in result.stderr
