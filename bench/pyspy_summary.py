"""Where a py-spy profile's samples go: by layer (the innermost Python frame's package) and
by cost (any frame of the stack matches), as percentages of the samples of each thread group.

    .venv/bin/python bench/pyspy_summary.py bench/results/profiles/*.speedscope.json.gz

Reads py-spy's speedscope output (`record --format speedscope --full-filenames`): one profile
per thread, each sample a stack of frame indices, root first, weighted in seconds. py-spy
leaves out sleeping threads but counts runnable ones: on a busy machine a thread waiting for
a CPU still collects samples, so shares of samples are shares of "wanting to run", not of
CPU time; the CPU per thread comes from psutil (bench/control_plane_profile.py).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("sqlite (aiosqlite + sqlite3)", ("/aiosqlite/", "/sqlite3/")),
    ("asyncpg", ("/asyncpg/",)),
    ("sqlalchemy orm", ("/sqlalchemy/orm/",)),
    ("sqlalchemy sql (statements, compiler)", ("/sqlalchemy/sql/",)),
    ("sqlalchemy engine, pool, dialects", ("/sqlalchemy/",)),
    ("hypercorn, h11", ("/hypercorn/", "/h11/", "/wsproto/", "/h2/")),
    ("quart, werkzeug, blinker", ("/quart/", "/werkzeug/", "/flask/", "/blinker/")),
    ("asyncio (event loop)", ("/asyncio/", "/selectors.py", "/contextvars")),
    ("logging", ("/logging/",)),
    ("json", ("/json/",)),
    ("pydantic", ("/pydantic", "/pydantic_core/")),
    ("gateway (own code)", ("/gateway/",)),
    ("threading, queue", ("/threading.py", "/queue.py", "/concurrent/")),
]
"""The innermost frame decides: first match wins, so order from specific to general."""

COSTS: list[tuple[str, Any]] = [
    ("ORM instance loading (orm/loading.py)", ("/sqlalchemy/orm/loading.py",)),
    ("ORM session: get/execute/flush/commit (orm/session.py)", ("/sqlalchemy/orm/session.py",)),
    ("ORM unit of work (flush)", ("/sqlalchemy/orm/unitofwork.py",
                                  "/sqlalchemy/orm/persistence.py")),
    ("SQL compilation (sql/compiler.py)", ("/sqlalchemy/sql/compiler.py",)),
    ("statement cache keys (sql/cache_key.py)", ("/sqlalchemy/sql/cache_key.py",)),
    ("connection pool checkout/checkin (pool/)", ("/sqlalchemy/pool/",)),
    ("greenlet bridging (util/_concurrency_py3k.py)", ("_concurrency_py3k.py",
                                                       "/sqlalchemy/util/concurrency.py")),
    ("aiosqlite calls from the loop (aiosqlite/ in the main thread)", "main:/aiosqlite/"),
    ("aiosqlite worker threads (SQLite itself, results)", "worker:/aiosqlite/"),
    ("asyncpg", ("/asyncpg/",)),
    ("Studio API key auth (studio/apikeys.py authenticate)", ("authenticate@/studio/apikeys.py",)),
    ("Calls app auth (calls/apps.py authenticate)", ("authenticate@/calls/apps.py",)),
    ("access log + redaction (app.py _log, logs.py, logging/)", (
        "_log@/gateway/app.py", "/gateway/logs.py", "/logging/")),
    ("JSON encoding (quart json, json/encoder.py)", ("/quart/json/", "/json/encoder.py",
                                                      "dumps@/json/__init__.py")),
    ("JSON body parsing (gateway/jsonbody.py)", ("/gateway/jsonbody.py",)),
    ("pydantic validation", ("/pydantic",)),
]
"""A stack counts once per row when any frame matches: `name@file` matches the function in
that file, a plain string matches the file; `main:` / `worker:` limit a row to the main thread
or to the others. Rows overlap (an ORM load runs inside a session call). Frameworks that
wrap every request (asyncio, Hypercorn, Quart, the ASGI middlewares) are left to the layer view."""


def _frame_key(frame: dict[str, Any]) -> str:
    return f"{frame.get('name', '?')}@{frame.get('file', '')}"


def _short(key: str) -> str:
    """`func@/long/path/site-packages/pkg/mod.py` -> `func@pkg/mod.py`."""
    name, _, file = key.partition("@")
    for marker in ("site-packages/", "lib/python3.11/", "lib/python3.12/", "/bench/../"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        if "/gateway/" in file:
            file = "gateway/" + file.split("/gateway/", 1)[1]
    return f"{name}@{file}"


def _matches(pattern: str, keys: list[str], files: list[str]) -> bool:
    if "@" in pattern:
        name, _, file = pattern.partition("@")
        return any(k.startswith(name + "@") and k.endswith(file) for k in keys)
    return any(pattern in f for f in files)


def _group(profile_name: str) -> str:
    if "MainThread" in profile_name:
        return "main"
    if "_connection_worker_thread" in profile_name:
        return "aiosqlite workers"
    return "other threads"


def _share(counter: Counter[str], total: float) -> dict[str, float]:
    return {k: round(100 * v / total, 1) for k, v in counter.most_common()} if total else {}


def summarize(path: Path, top: int = 20) -> dict[str, Any]:
    """Per thread group (main = the event loop; aiosqlite workers; other threads): its share
    of samples, and within it the layers, costs and top functions (innermost frame), as
    percentages of that group's samples."""
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    frames = data["shared"]["frames"]
    keys = [_frame_key(f) for f in frames]
    files = [str(f.get("file", "")) for f in frames]
    totals: Counter[str] = Counter()
    layers: dict[str, Counter[str]] = {}
    costs: dict[str, Counter[str]] = {}
    leaves: dict[str, Counter[str]] = {}
    for profile in data["profiles"]:
        group = _group(profile["name"])
        main = group == "main"
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=True):
            if not stack:
                continue
            totals[group] += weight
            leaf = stack[-1]
            leaves.setdefault(group, Counter())[_short(keys[leaf])] += weight
            layer = next((n for n, pats in LAYERS if any(p in files[leaf] for p in pats)),
                         "other")
            layers.setdefault(group, Counter())[layer] += weight
            stack_keys = [keys[i] for i in stack]
            stack_files = [files[i] for i in stack]
            for name, patterns in COSTS:
                if isinstance(patterns, str):
                    scope, _, file = patterns.partition(":")
                    hit = (scope == "main") == main and any(file in f for f in stack_files)
                else:
                    hit = any(_matches(p, stack_keys, stack_files) for p in patterns)
                if hit:
                    costs.setdefault(group, Counter())[name] += weight
    everything = sum(totals.values())
    return {
        "samples_s": round(everything, 2),
        "groups_pct": _share(totals, everything),
        "by_group": {
            group: {
                "layers_pct": _share(layers[group], total),
                "costs_pct": _share(costs.get(group, Counter()), total),
                "top_self_pct": dict(list(_share(leaves[group], total).items())[:top]),
            }
            for group, total in totals.most_common()
        },
    }


def main() -> None:
    for name in sys.argv[1:]:
        print(json.dumps({name: summarize(Path(name))}, indent=1))


if __name__ == "__main__":
    main()
