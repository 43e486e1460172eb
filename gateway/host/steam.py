"""The installed Steam library, read from the host's own files (no Steam API key).

`libraryfolders.vdf` names the library folders; each holds `steamapps/appmanifest_<id>.acf`.
Both are Valve KeyValues text, parsed here.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mediagate.host")

CDN = "https://cdn.cloudflare.steamstatic.com/steam/apps"
DEFAULT_ROOTS = (
    "~/.local/share/Steam",
    "~/.steam/steam",
    "~/.var/app/com.valvesoftware.Steam/.local/share/Steam",
)
# Not games: redistributables, runtimes and compatibility tools.
TOOL_APPIDS = {"228980", "1070560", "1391110", "1628350", "1493710", "2180100", "2805730"}
TOOL_NAME = re.compile(r"^(Proton|Steam Linux Runtime|Steamworks Common)", re.IGNORECASE)
INSTALLED = 4
MAX_FILE = 4 * 1024 * 1024

_TOKEN = re.compile(r'"((?:\\.|[^"\\])*)"|([{}])|(//[^\n]*)|([^\s{}"]+)')


class VdfError(ValueError):
    pass


def parse_vdf(text: str) -> dict[str, Any]:
    """KeyValues text -> nested dicts (keys lowercased; later duplicates win)."""
    stack: list[dict[str, Any]] = [{}]
    key: str | None = None
    for match in _TOKEN.finditer(text):
        quoted, brace, comment, bare = match.groups()
        if comment is not None:
            continue
        if brace == "{":
            if key is None:
                raise VdfError("block without a key")
            child: dict[str, Any] = {}
            stack[-1][key.lower()] = child
            stack.append(child)
            key = None
        elif brace == "}":
            if len(stack) == 1:
                raise VdfError("unbalanced }")
            stack.pop()
            key = None
        else:
            token = quoted if quoted is not None else bare
            token = token.replace('\\"', '"').replace("\\\\", "\\")
            if key is None:
                key = token
            else:
                stack[-1][key.lower()] = token
                key = None
    return stack[0]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_FILE:
            return None
        return parse_vdf(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, VdfError) as exc:
        log.warning("steam: cannot read %s: %s", path, exc)
        return None


def find_root(configured: Path | None) -> Path | None:
    if configured is not None:
        return configured.expanduser()
    for candidate in DEFAULT_ROOTS:
        path = Path(os.path.expanduser(candidate))
        if (path / "steamapps").is_dir():
            return path
    return None


def library_folders(root: Path) -> list[Path]:
    folders: list[Path] = [root]
    for vdf in (root / "steamapps" / "libraryfolders.vdf", root / "config" / "libraryfolders.vdf"):
        data = _read(vdf) if vdf.is_file() else None
        if not data:
            continue
        entries = data.get("libraryfolders") or {}
        for name, entry in entries.items():
            if not name.isdigit():
                continue
            path = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(path, str) and path:
                folders.append(Path(path))
        break
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def artwork(appid: str) -> dict[str, str | None]:
    return {
        "portrait": f"{CDN}/{appid}/library_600x900.jpg",
        "header": f"{CDN}/{appid}/header.jpg",
        "hero": f"{CDN}/{appid}/library_hero.jpg",
        "logo": f"{CDN}/{appid}/logo.png",
    }


def scan(root: Path | None) -> list[dict[str, Any]]:
    """Every installed Steam title as a GameEntry dict."""
    if root is None or not (root / "steamapps").is_dir():
        return []
    games: dict[str, dict[str, Any]] = {}
    for folder in library_folders(root):
        steamapps = folder / "steamapps"
        try:
            manifests = sorted(steamapps.glob("appmanifest_*.acf"))
        except OSError:
            continue
        for manifest in manifests:
            data = _read(manifest)
            state = (data or {}).get("appstate")
            if not isinstance(state, dict):
                continue
            appid, name = state.get("appid"), state.get("name")
            if not isinstance(appid, str) or not appid.isdigit() or not isinstance(name, str):
                continue
            flags = state.get("stateflags")
            if isinstance(flags, str) and flags.isdigit() and not int(flags) & INSTALLED:
                continue
            if appid in TOOL_APPIDS or TOOL_NAME.match(name):
                continue
            games[appid] = {
                "id": f"steam:{appid}",
                "store": "steam",
                "title": name,
                "art": artwork(appid),
                "launch": {"kind": "steam_appid", "value": appid},
            }
    return list(games.values())
