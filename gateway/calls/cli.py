"""`mediagate calls-app create|list|delete`: manage Calls apps (prints JSON)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.admin import AdminContext
from gateway.calls.apps import AppStore


async def _create(ctx: AdminContext, args: argparse.Namespace) -> dict[str, Any]:
    info, secret = await AppStore(ctx.db).create(name=args.name)
    return {"appId": info.id, "appSecret": secret, "name": info.name}


async def _list(ctx: AdminContext, args: argparse.Namespace) -> list[dict[str, object]]:
    return [app.as_json() for app in await AppStore(ctx.db).list()]


async def _delete(ctx: AdminContext, args: argparse.Namespace) -> dict[str, Any]:
    if not await AppStore(ctx.db).delete(args.app_id):
        raise ValueError(f"no calls app {args.app_id}")
    return {"appId": args.app_id, "deleted": True}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("calls-app", help="manage Calls apps (id + secret)")
    actions = group.add_subparsers(dest="calls_app_command", required=True)
    create = actions.add_parser("create", help="create an app; prints its id and secret once")
    create.add_argument("--name", help="a label for the app")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list apps (secrets are never shown)")
    listing.set_defaults(handler=_list)
    delete = actions.add_parser("delete", help="delete an app and its sessions")
    delete.add_argument("app_id")
    delete.set_defaults(handler=_delete)
