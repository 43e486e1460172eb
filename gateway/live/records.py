"""Recording files in `RECORD_DIR`: the `/api/records` listing and safe name lookup."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.http import parse_range_header

from gateway.live.recording import RECORDING_SUFFIXES

SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$")
MIME_TYPES = {".ivf": "video/x-ivf", ".ogg": "audio/ogg", ".mp4": "video/mp4"}


def list_records(directory: Path) -> list[dict[str, object]]:
    """Newest first (ties by name), `[]` when the directory does not exist."""
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    records: list[tuple[float, str, dict[str, object]]] = []
    for entry in entries:
        if entry.suffix.lower() not in RECORDING_SUFFIXES:
            continue
        try:
            info = entry.stat()
        except OSError:
            continue
        if not entry.is_file():
            continue
        modified = datetime.fromtimestamp(int(info.st_mtime), UTC)
        records.append((info.st_mtime, entry.name, {
            "name": entry.name,
            "size": info.st_size,
            "modTime": modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "url": f"/records/{entry.name}",
        }))
    records.sort(key=lambda item: item[1])
    records.sort(key=lambda item: int(item[0]), reverse=True)
    return [item[2] for item in records]


def find_record(directory: Path, name: str) -> Path | None:
    """The file `name` inside `directory`, or None (traversal, hidden or unknown)."""
    if not SAFE_NAME.fullmatch(name) or Path(name).suffix.lower() not in RECORDING_SUFFIXES:
        return None
    root = directory.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def mime_type(path: Path) -> str:
    return MIME_TYPES.get(path.suffix.lower(), "application/octet-stream")


def served_range(header: str | None, size: int) -> str | None:
    """The `Range` header to serve `/records/<name>` with. Quart serves `bytes=a-b` and
    `bytes=a-` but fails on a suffix range (`bytes=-n`, an assertion and a 500), so one is
    rewritten to the span it names (all of the file when longer); a blank header is no range
    (None), as for Go's file server; anything else stays for Quart to serve or refuse (416)."""
    if header is None or not header.strip():
        return None
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return header
    start, _ = parsed.ranges[0]
    if start >= 0 or size == 0:
        return header
    return f"bytes={max(0, size + start)}-{size - 1}"
