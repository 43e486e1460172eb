"""`mediagate host-token` and `mediagate host-clients list|unpair` (print JSON)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.admin import AdminContext
from gateway.host.auth import TOKEN_FILE, is_loopback_bind, resolve_token
from gateway.host.schemas import FINGERPRINT_RE
from gateway.host.service import HostStore


async def _token(ctx: AdminContext, args: argparse.Namespace) -> dict[str, Any]:
    settings = ctx.settings
    if settings.punktfunk_mgmt_token is not None:
        return {"required": True, "source": "PUNKTFUNK_MGMT_TOKEN"}
    if is_loopback_bind(settings):
        return {"required": False, "source": "none (loopback bind)"}
    return {"required": True, "source": str(settings.data_dir / TOKEN_FILE),
            "token": resolve_token(settings)}


async def _list(ctx: AdminContext, args: argparse.Namespace) -> dict[str, Any]:
    store = HostStore(ctx.db)
    return {
        "gamestream": [{"fingerprint": c.fingerprint, "subject": c.subject}
                       for c in await store.paired_clients()],
        "native": [{"fingerprint": c.fingerprint, "name": c.name}
                   for c in await store.native_clients()],
    }


async def _unpair(ctx: AdminContext, args: argparse.Namespace) -> dict[str, Any]:
    fingerprint = args.fingerprint.lower()
    if not FINGERPRINT_RE.fullmatch(fingerprint):
        raise ValueError("expected a 64-character hex fingerprint")
    store = HostStore(ctx.db)
    removed = [kind for kind, done in (
        ("gamestream", await store.unpair_client(fingerprint)),
        ("native", await store.unpair_native(fingerprint))) if done]
    if not removed:
        raise ValueError(f"no paired client {fingerprint}")
    return {"fingerprint": fingerprint, "unpaired": removed}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("host-token", help="where the punktfunk management token "
                                "comes from (and the generated one)")
    token.set_defaults(handler=_token)
    group = commands.add_parser("host-clients", help="paired GameStream and native clients")
    actions = group.add_subparsers(dest="host_clients_command", required=True)
    actions.add_parser("list", help="list paired clients").set_defaults(handler=_list)
    unpair = actions.add_parser("unpair", help="unpair a client by certificate fingerprint")
    unpair.add_argument("fingerprint")
    unpair.set_defaults(handler=_unpair)
