"""`mediagate studio-key create|list|revoke`: manage Studio API keys (each prints JSON)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.admin import AdminContext
from gateway.studio import apikeys


async def _create(context: AdminContext, args: argparse.Namespace) -> Any:
    scopes = list(apikeys.ALL_SCOPES) if args.all_scopes else list(args.scope or [])
    issued = await apikeys.create_key(context.db, args.owner, scopes)
    return issued.as_json() | {"note": "store this key now: it is shown only once"}


async def _list(context: AdminContext, args: argparse.Namespace) -> Any:
    return {"keys": await apikeys.list_keys(context.db)}


async def _revoke(context: AdminContext, args: argparse.Namespace) -> Any:
    if not await apikeys.revoke_key(context.db, args.id):
        raise ValueError(f"no key with id {args.id}")
    return {"id": args.id, "revoked": True}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("studio-key", help="manage Studio API keys")
    actions = group.add_subparsers(dest="studio_key_command", required=True)
    create = actions.add_parser("create", help="create a key; prints it once, as JSON")
    create.add_argument("--owner", required=True, help="the owner (subject) of the key")
    which = create.add_mutually_exclusive_group(required=True)
    which.add_argument("--scope", action="append", choices=apikeys.ALL_SCOPES,
                       help="a scope to grant (repeatable)")
    which.add_argument("--all-scopes", action="store_true", help="grant every scope")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.set_defaults(handler=_revoke)
