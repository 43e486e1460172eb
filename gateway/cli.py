"""`mediagate`: serve, migrate, version."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.logs import Redactor, configure_logging
from gateway.settings import Settings, SettingsError

log = logging.getLogger("mediagate")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediagate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the database, then serve")
    serve.add_argument("--bind", help="HOST:PORT (default $MEDIAGATE_BIND or 0.0.0.0:8080)")
    commands.add_parser("migrate", help="upgrade the database schema to the newest version")
    commands.add_parser("version", help="print the version")
    from gateway.app import MOUNTS

    for mount in MOUNTS:
        if mount.add_commands is not None:
            mount.add_commands(commands)
    return parser


def _settings(overrides: dict[str, str]) -> Settings:
    environ = dict(os.environ)
    environ.update(overrides)
    return Settings.from_env(environ)


def _migrate(settings: Settings) -> None:
    from gateway.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(json.dumps({"version": __version__}))
        return 0
    overrides = {"MEDIAGATE_BIND": args.bind} if getattr(args, "bind", None) else {}
    try:
        settings = _settings(overrides)
    except SettingsError as exc:
        print(f"mediagate: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format,
                      Redactor(settings.secret_values()))
    # `serve` migrates unless a deployment migrates once elsewhere (the Helm chart's Job).
    skip = args.command == "serve" and not settings.migrate_on_start
    try:
        if not skip:
            _migrate(settings)
    except Exception as exc:  # the database is unreachable or the schema is broken
        log.error("database migration failed: %s", exc)
        return 1
    if args.command == "migrate":
        log.info("database is at the newest schema")
        return 0
    handler = getattr(args, "handler", None)
    if handler is not None:
        from gateway.admin import run_admin
        from gateway.errors import ApiError

        try:
            result = asyncio.run(run_admin(settings, handler, args))
        except (ApiError, ValueError) as exc:
            print(f"mediagate: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result, indent=2, default=str))
        return 0
    from gateway.serve import serve

    log.info("mediagate %s serving on %s", __version__, settings.bind)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
