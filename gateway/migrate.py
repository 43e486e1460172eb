"""Alembic, driven from code: `mediagate migrate`, `serve`, and the tests use this."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from gateway.paths import MIGRATIONS_DIR


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Upgrade to every branch head (each API keeps its own migration branch)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
