"""Control-plane load benchmark: representative requests of all five APIs, driven by wrk.

    .venv/bin/python bench/control_plane.py --label before [--duration 5]
        [--connections 1,32,256] [--databases sqlite,postgresql] [--only studio_get,...]
        [--owners 8] [--profile 32] [--server-env NAME=VALUE ...]

Needs Debian's `wrk` and PostgreSQL, and the `bench` extra (`scripts/setup --bench`). For each
database a real `mediagate serve` starts (tests/server.py; on PostgreSQL with its own server,
tests/pg.py) with every rate limit off and STUDIO_MAX_STUDIOS raised, and is seeded over
HTTP: Studio API keys for `--owners` owners (the bootstrap key plus `mediagate studio-key
create`), 60 studios per owner and the cursors of their `?limit=20` pages, 200 Punch sessions
with their tokens, 10 custom host games, and 512 peerless Calls sessions (recreated before
they expire: held sessions live 300 s). The servers run side by side and the runs alternate
between them, so SQLite and PostgreSQL see the same neighbours on a shared machine.

Each operation (OPS below; `mixed` draws every other one with equal weight) runs `--duration`
seconds of closed-loop wrk (bench/control_plane.lua: per-request variation from pools of ids,
keys and cursors, unique names for creates, every status counted) at each connection count.
Reported per (database, connections, operation): requests/s, latency p50/p90/p99/max (wrk;
requests past 10 s count as timeouts), errors (non-2xx, socket errors, timeouts), CPU per
request of the gateway process tree and of PostgreSQL (psutil, over wrk's run), wrk's own CPU
in cores (the load generator is not the limit while far below 1), the CPU the machine's other
processes used meanwhile (`other_cores`), and how long a fixed piece of Python work took just
before (`reference_ms`: the CPU speed a process gets now, host contention included). During
`mixed`, a probe on its own connection times `GET /healthz` every 20 ms (health under mixed
load). `/healthz` at 32 connections also runs before and after everything (`noise`): the
ratio shows how steady the machine was.

Runs go operation by operation (1, 32, 256 connections back to back) with the Calls operations
and `mixed` last: a peerless Calls session is closed by one UPDATE 300 s after its creation,
and that write burst must not land in other operations' runs.

`--profile N` instead profiles the gateway under N connections while each selected operation
runs (bench/control_plane_profile.py): py-spy samples (bench/results/profiles/
<db>-<op>.speedscope.json.gz, summarized by bench/pyspy_summary.py), CPU per thread, and counts
per request of SQL statements, transactions, pool checkouts, aiosqlite hand-offs, ORM loads,
log records and GC passes (bench/instrument/sitecustomize.py, loaded into the server). It
writes bench/results/profiles/control_plane-<label>-profile.json. `--server-env
CONTROL_PLANE_WHATIF=...` runs the server with a lever of issue 18 patched in (see that file).

Prints JSON and writes bench/results/control_plane-<label>.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.control_plane_profile import (  # noqa: E402
    RunProfile,
    instrument_pythonpath,
    instrumented_env,
    read_counts,
)
from tests.pg import PostgresServer, start_postgres  # noqa: E402
from tests.server import RunningServer, start_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "control_plane.lua"
RESULT_MARK = "CONTROL_PLANE_RESULT "
WRK_TIMEOUT = "10s"
STUDIOS_PER_OWNER = 60
PAGE_LIMIT = 20
PUNCH_POOL = 200
CALLS_POOL = 512
CUSTOM_GAMES = 10
CALLS_POOL_MAX_AGE = 150.0
"""Seconds a pool of peerless Calls sessions is reused (the server closes them at 300 s)."""
PROBE_INTERVAL = 0.02
IDLE_WINDOW = 3.0
COUNTS_FILE = "counts.json"
PY_SPY = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


# -- the seeded world ------------------------------------------------------------------------


@dataclass
class World:
    base_url: str
    host_token: str
    calls_app: str
    calls_secret: str
    keys: list[str] = field(default_factory=list)
    studios: list[tuple[str, str]] = field(default_factory=list)
    """(API key, studio id) of the owner's studios."""
    cursors: list[tuple[str, str | None]] = field(default_factory=list)
    """(API key, cursor) of every page of every owner's studio list (None: the first)."""
    punch: list[tuple[str, str]] = field(default_factory=list)
    """(session name, admin token)."""
    calls_sessions: list[str] = field(default_factory=list)
    calls_created: float = 0.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


JSON = {"Content-Type": "application/json"}


def variant(method: str, path: str, headers: dict[str, str] | None = None,
            body: Any = None) -> dict[str, Any]:
    found: dict[str, Any] = {"method": method, "path": path, "headers": headers or {}}
    if body is not None:
        found["body"] = json.dumps(body, separators=(",", ":"))
        found["headers"] = {**JSON, **found["headers"]}
    return found


@dataclass(frozen=True)
class Op:
    api: str
    kind: str
    """health, read or write."""
    variants: Callable[[World], list[dict[str, Any]]]
    unique: bool = False
    needs_calls_pool: bool = False


OPS: dict[str, Op] = {
    "healthz": Op("live", "health", lambda w: [variant("GET", "/healthz")]),
    "punch_health": Op("punch", "health", lambda w: [variant("GET", "/api/health")]),
    "studio_health": Op("studio", "health", lambda w: [variant("GET", "/v1/health")]),
    "rooms": Op("live", "read", lambda w: [variant("GET", "/api/rooms")]),
    "host_status": Op("host", "read", lambda w: [
        variant("GET", "/api/v1/status", bearer(w.host_token))]),
    "host_library": Op("host", "read", lambda w: [
        variant("GET", "/api/v1/library", bearer(w.host_token))]),
    "punch_get": Op("punch", "read", lambda w: [
        variant("GET", f"/api/session/{name}", bearer(token)) for name, token in w.punch]),
    "punch_create": Op("punch", "write", lambda w: [
        variant("POST", "/api/session", body={"name": "b{u}"})], unique=True),
    "studio_list": Op("studio", "read", lambda w: [
        variant("GET", f"/v1/studios?limit={PAGE_LIMIT}"
                + (f"&cursor={quote(cursor)}" if cursor else ""), bearer(key))
        for key, cursor in w.cursors]),
    "studio_get": Op("studio", "read", lambda w: [
        variant("GET", f"/v1/studios/{sid}", bearer(key)) for key, sid in w.studios]),
    "studio_create": Op("studio", "write", lambda w: [
        variant("POST", "/v1/studios", bearer(key), {"name": "bench {u}"}) for key in w.keys],
        unique=True),
    "studio_update": Op("studio", "write", lambda w: [
        variant("PATCH", f"/v1/studios/{sid}", bearer(key), {"description": "{u}"})
        for key, sid in w.studios], unique=True),
    "calls_get": Op("calls", "read", lambda w: [
        variant("GET", f"/v1/apps/{w.calls_app}/sessions/{sid}", bearer(w.calls_secret))
        for sid in w.calls_sessions], needs_calls_pool=True),
    "calls_new": Op("calls", "write", lambda w: [
        variant("POST", f"/v1/apps/{w.calls_app}/sessions/new", bearer(w.calls_secret), {})]),
}
MIXED = "mixed"
ORDER = [*OPS, MIXED]


def op_specs(name: str, world: World) -> list[dict[str, Any]]:
    names = list(OPS) if name == MIXED else [name]
    return [{"weight": 1, "unique": OPS[n].unique, "variants": OPS[n].variants(world)}
            for n in names]


def lua(value: Any) -> str:
    """A Lua literal of JSON-like data (ASCII strings only)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value)
        if "\\u" in text:
            raise ValueError(f"non-ASCII string for Lua: {value!r}")
        return text
    if isinstance(value, list):
        return "{" + ", ".join(lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


# -- seeding ---------------------------------------------------------------------------------


async def _gather_limited(jobs: list[Any], limit: int = 16) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Any) -> Any:
        async with semaphore:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def _expect(client: httpx.AsyncClient, method: str, path: str, status: int,
                  **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    if response.status_code != status:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def create_owner_keys(server: RunningServer, count: int) -> list[str]:
    """`mediagate studio-key create` for owners bench-1.. (the operator's way), in parallel."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "studio-key", "create", "--owner",
             f"bench-{i}", "--all-scopes"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        )
        for i in range(1, count + 1)
    ]
    keys = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"studio-key create failed: {err.decode()[-500:]}")
        keys.append(json.loads(out)["key"])
    return keys


async def seed(world: World, server: RunningServer, bootstrap_key: str, owners: int) -> None:
    world.keys = [bootstrap_key, *create_owner_keys(server, owners - 1)]
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as client:
        for key in world.keys:
            made = await _gather_limited([
                _expect(client, "POST", "/v1/studios", 201, headers=bearer(key),
                        json={"name": f"seed {i}", "description": "seeded"})
                for i in range(STUDIOS_PER_OWNER)
            ])
            world.studios += [(key, body["id"]) for body in made]
            cursor: str | None = None
            while True:
                world.cursors.append((key, cursor))
                params = {"limit": PAGE_LIMIT} | ({"cursor": cursor} if cursor else {})
                page = await _expect(client, "GET", "/v1/studios", 200, headers=bearer(key),
                                     params=params)
                cursor = page.get("nextCursor")
                if not cursor:
                    break
        tag = secrets.token_hex(3)
        made = await _gather_limited([
            _expect(client, "POST", "/api/session", 201, json={"name": f"seed-{tag}-{i}"})
            for i in range(PUNCH_POOL)
        ])
        world.punch = [(body["session"], body["token"]) for body in made]
        await _gather_limited([
            _expect(client, "POST", "/api/v1/library/custom", 201,
                    headers=bearer(world.host_token), json={"title": f"Game {i}"})
            for i in range(CUSTOM_GAMES)
        ])
    await refresh_calls_pool(world)


async def refresh_calls_pool(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as client:
        made = await _gather_limited([
            _expect(client, "POST", f"/v1/apps/{world.calls_app}/sessions/new", 201,
                    headers=bearer(world.calls_secret), json={})
            for _ in range(CALLS_POOL)
        ])
    world.calls_sessions = [body["sessionId"] for body in made]
    world.calls_created = time.monotonic()


def smoke(world: World) -> None:
    """Every operation's first variant once: a benchmark of 401s would measure nothing."""
    with httpx.Client(base_url=world.base_url, timeout=30) as client:
        for name, op in OPS.items():
            v = op.variants(world)[0]
            path = v["path"].replace("{u}", f"smoke-{secrets.token_hex(3)}")
            body = v.get("body", "").replace("{u}", f"smoke-{secrets.token_hex(3)}") or None
            response = client.request(v["method"], path, headers=v["headers"], content=body)
            if not response.is_success:
                raise RuntimeError(f"{name}: {v['method']} {path} answered "
                                   f"{response.status_code} {response.text[:300]}")


# -- measuring -------------------------------------------------------------------------------


def tree_cpu(pid: int | None) -> float:
    """CPU seconds of a process, its live descendants and its reaped children."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def reference_ms() -> float:
    """Milliseconds a fixed piece of pure-Python work takes here now (best of 3): the CPU
    a process gets on this shared machine, including contention this VM cannot see (its
    CPU-time accounting does not show steal time, so contention inflates CPU per request)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(200_000))
        best = min(best, time.perf_counter() - started)
    return round(1000 * best, 2)


def busy_cpu() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


class HealthProbe(threading.Thread):
    """`GET /healthz` every 20 ms on its own keep-alive connection."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.latencies: list[float] = []
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        while not self.halt.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
                else:
                    self.latencies.append(time.perf_counter() - started)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.halt.wait(PROBE_INTERVAL)
        connection.close()

    def result(self) -> dict[str, Any]:
        samples = sorted(self.latencies)
        if not samples:
            return {"requests": 0, "failures": self.failures}
        pick = lambda q: round(1000 * samples[min(len(samples) - 1, int(len(samples) * q))], 2)  # noqa: E731
        return {"requests": len(samples), "failures": self.failures, "p50_ms": pick(0.5),
                "p99_ms": pick(0.99), "max_ms": round(1000 * samples[-1], 2)}


@dataclass
class Target:
    database: str
    tmp: Path
    server: RunningServer
    world: World
    postgres: PostgresServer | None = None

    @property
    def postgres_pid(self) -> int | None:
        if self.postgres is None:
            return None
        pidfile = self.postgres.root / "data" / "postmaster.pid"
        return int(pidfile.read_text().split()[0])


def run_wrk(target: Target, name: str, connections: int, duration: float,
            profile: RunProfile | None = None) -> dict[str, Any]:
    world = target.world
    op = OPS.get(name)
    if (op is None or op.needs_calls_pool) and (
        time.monotonic() - world.calls_created + duration > CALLS_POOL_MAX_AGE
    ):
        asyncio.run(refresh_calls_pool(world))
    spec = target.tmp / f"{name}.lua"
    spec.write_text("return " + lua({"tag": secrets.token_hex(3), "ops": op_specs(name, world)})
                    + "\n")
    command = ["wrk", "-t", str(min(2, connections)), "-c", str(connections),
               "-d", f"{duration:g}s", "--timeout", WRK_TIMEOUT, "-s", str(LUA),
               world.base_url + "/", "--", str(spec)]
    probe = HealthProbe(world.base_url) if name == MIXED else None
    if profile is not None:
        profile.start()
    reference = reference_ms()
    me = psutil.Process()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    gateway_before = tree_cpu(target.server.process.pid)
    db_before = tree_cpu(target.postgres_pid)
    busy_before, me_before = busy_cpu(), sum(me.cpu_times()[:2])
    started = time.monotonic()
    if probe is not None:
        probe.start()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        process.wait()
        wall = time.monotonic() - started
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        gateway_cpu = tree_cpu(target.server.process.pid) - gateway_before
        db_cpu = tree_cpu(target.postgres_pid) - db_before
        busy = busy_cpu() - busy_before
        me_cpu = sum(me.cpu_times()[:2]) - me_before
        out.seek(0)
        text = out.read().decode(errors="replace")
    if probe is not None:
        probe.halt.set()
        probe.join()
    wrk_cpu = (children_after.ru_utime - children_before.ru_utime
               + children_after.ru_stime - children_before.ru_stime)
    lines = [line for line in text.splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text[-2000:]}")
    raw = json.loads(lines[-1].removeprefix(RESULT_MARK))
    if target.server.process.poll() is not None:
        raise RuntimeError(f"the server died during {name}:\n{target.server.log()[-3000:]}")
    seconds = raw["duration_us"] / 1e6
    requests = raw["requests"]
    lat = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    errors = raw["errors"]
    row: dict[str, Any] = {
        "database": target.database,
        "connections": connections,
        "op": name,
        "api": op.api if op else "all",
        "kind": op.kind if op else "mixed",
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "latency_ms": {k: lat[k] for k in ("p50", "p90", "p99", "p999", "max", "mean")},
        "errors": {
            "non_2xx": sum(n for code, n in raw["statuses"].items() if not code.startswith("2")),
            "socket": errors["connect"] + errors["read"] + errors["write"],
            "timeout": errors["timeout"],
            "statuses": raw["statuses"],
        },
        "gateway_cpu_ms_per_req": round(1000 * gateway_cpu / max(requests, 1), 3),
        "gateway_cores": round(gateway_cpu / wall, 2),
        "wrk_cores": round(wrk_cpu / wall, 3),
        "other_cores": round(max(0.0, busy - gateway_cpu - db_cpu - wrk_cpu - me_cpu) / wall, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "reference_ms": reference,
    }
    if target.postgres is not None:
        row["db_cpu_ms_per_req"] = round(1000 * db_cpu / max(requests, 1), 3)
        row["db_cores"] = round(db_cpu / wall, 2)
    if probe is not None:
        row["healthz_probe"] = probe.result()
    if profile is not None:
        row["profile"] = profile.finish(requests)
    return row


# -- servers ---------------------------------------------------------------------------------


def start_target(database: str, tmp: Path, owners: int,
                 extra_env: dict[str, str] | None = None) -> Target:
    """A seeded server on `database` (and that database's own server, for PostgreSQL)."""
    tmp.chmod(0o755)  # PostgreSQL runs as the `postgres` user
    (tmp / "steam").mkdir()
    postgres = server = None
    env = {**(extra_env or {}),
        "STUDIO_RATE_LIMIT_RPS": "0",
        "PUNCH_RATE_LIMIT": "0",
        "RATE_LIMIT_RPS": "0",
        "STUDIO_MAX_STUDIOS": "1000000",
        "MEDIAGATE_STEAM_ROOT": str(tmp / "steam"),  # no Steam library: custom games only
        "PUNKTFUNK_MGMT_TOKEN": secrets.token_hex(16),
        "CALLS_APP_ID": "bench",
        "CALLS_APP_SECRET": secrets.token_hex(16),
        "MEDIAGATE_BOOTSTRAP_API_KEY": "sk_live_" + secrets.token_urlsafe(24),
    }
    if database not in ("sqlite", "postgresql"):
        raise SystemExit(f"unknown database {database!r}")
    try:
        if database == "postgresql":
            postgres = start_postgres(tmp / "pg")
            env["MEDIAGATE_DATABASE_URL"] = postgres.create_database()
        server = start_server(tmp / "data", env)
        world = World(server.base_url, env["PUNKTFUNK_MGMT_TOKEN"], env["CALLS_APP_ID"],
                      env["CALLS_APP_SECRET"])
        asyncio.run(seed(world, server, env["MEDIAGATE_BOOTSTRAP_API_KEY"], owners))
        smoke(world)
    except BaseException:
        if server is not None:
            server.stop()
        if postgres is not None:
            postgres.stop()
        raise
    return Target(database, tmp, server, world, postgres)


def idle_counts(target: Target) -> dict[str, float]:
    """The server's own background work (counters per second while no client calls)."""
    pid, counts_file = target.server.process.pid, target.tmp / COUNTS_FILE
    before = read_counts(pid, counts_file)
    time.sleep(IDLE_WINDOW)
    idle = read_counts(pid, counts_file) - before
    idle.pop("gc.longest_pause_ms", None)
    return {k: round(v / IDLE_WINDOW, 2) for k, v in sorted(idle.items())}


def stop_target(target: Target) -> None:
    target.server.stop()
    if target.postgres is not None:
        target.postgres.stop()


# -- output ----------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'db':<10} {'conn':>4} {'op':<14} {'req/s':>8} {'p50':>8} {'p99':>8} {'max':>8} "
            f"{'err':>6} {'gw ms/req':>9} {'wrk':>5} {'other':>5} {'ref ms':>6}")
    lines = [head]
    for r in rows:
        lat = r["latency_ms"]
        errs = r["errors"]["non_2xx"] + r["errors"]["socket"] + r["errors"]["timeout"]
        lines.append(
            f"{r['database']:<10} {r['connections']:>4} {r['op']:<14} {r['rps']:>8.0f} "
            f"{lat['p50']:>8.1f} {lat['p99']:>8.1f} {lat['max']:>8.0f} {errs:>6} "
            f"{r['gateway_cpu_ms_per_req']:>9.2f} {r['wrk_cores']:>5.2f} {r['other_cores']:>5.2f}"
            f" {r.get('reference_ms', 0):>6.1f}"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    ops = [o for o in ORDER if any(r["op"] == o for r in rows)]
    conns = sorted({r["connections"] for r in rows})
    dbs = [d for d in ("sqlite", "postgresql") if any(r["database"] == d for r in rows)]
    colors = {"sqlite": "tab:blue", "postgresql": "tab:orange"}
    size = (max(8, 5 * len(conns)), 0.6 * len(ops) + 2)
    fig, axes = plt.subplots(2, len(conns), figsize=size, squeeze=False, sharey=True)
    height = 0.8 / len(dbs)
    for col, conn in enumerate(conns):
        for row_index, (metric, title) in enumerate(
            [("rps", "requests/s"), ("p99", "p99 latency (ms, log)")]
        ):
            ax = axes[row_index][col]
            for d, db in enumerate(dbs):
                values = []
                for op in ops:
                    found = [r for r in rows if r["op"] == op and r["database"] == db
                             and r["connections"] == conn]
                    if not found:
                        values.append(0.0)
                    elif metric == "rps":
                        values.append(found[0]["rps"])
                    else:
                        values.append(found[0]["latency_ms"]["p99"])
                positions = [-i + (d - (len(dbs) - 1) / 2) * height for i in range(len(ops))]
                ax.barh(positions, values, height=height, color=colors[db], label=db)
            ax.set_yticks([-i for i in range(len(ops))], ops)
            if metric == "p99":
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{title}, {conn} connection{'s' if conn > 1 else ''}")
            ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(loc="lower right")
    fig.suptitle(f"mediagate control plane ({label}): wrk, one operation at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# -- main ------------------------------------------------------------------------------------


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="results name, e.g. before")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--connections", default="1,32,256")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--only", default="", help=f"operations, of: {','.join(ORDER)}")
    parser.add_argument("--owners", type=int, default=8, help="Studio owners (API keys)")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="record py-spy profiles at N connections instead of a benchmark")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="directory for the JSON and the plot (default bench/results)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra server environment, e.g. MEDIAGATE_LOG_LEVEL=WARNING or "
                             "CONTROL_PLANE_WHATIF=uvloop (bench/instrument/sitecustomize.py)")
    args = parser.parse_args()
    ops = parse_list(args.only) or ORDER
    unknown = [o for o in ops if o not in ORDER]
    if unknown:
        parser.error(f"unknown operations {unknown}; known: {ORDER}")
    ops = [o for o in ORDER if o in ops]
    connections = [int(c) for c in parse_list(args.connections)]
    if args.profile:
        connections = [args.profile]
        if PY_SPY is None:
            parser.error("--profile needs py-spy (pip install -e '.[bench]')")
    server_env = dict(item.split("=", 1) for item in args.server_env)
    profiles = args.results / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any]] = []
    noise: dict[str, Any] = {}
    background: dict[str, Any] = {}
    started = time.time()
    with contextlib.ExitStack() as stack:
        # every database's server runs from the start, and each run alternates between them:
        # SQLite and PostgreSQL see the same neighbours on this shared machine
        targets = []
        for database in parse_list(args.databases):
            tmp = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"control-plane-{database}-")))
            env = instrumented_env(ROOT, tmp / COUNTS_FILE) if args.profile else {}
            env.update(server_env)
            if "CONTROL_PLANE_WHATIF" in env:
                env.setdefault("PYTHONPATH", instrument_pythonpath(ROOT))
            print(f"[{database}] starting and seeding", file=sys.stderr, flush=True)
            target = start_target(database, tmp, args.owners, env)
            stack.callback(stop_target, target)
            targets.append(target)
        first = {}
        for target in targets:
            if args.profile:
                background[target.database] = idle_counts(target)
            else:
                first[target.database] = run_wrk(target, "healthz", 32, args.duration)
        for name in ops:
            for conn in connections:
                for target in targets:
                    profile = None
                    if args.profile:
                        assert PY_SPY is not None
                        profile = RunProfile(
                            target.server.process.pid, PY_SPY,
                            profiles / f"{target.database}-{name}.speedscope.json",
                            args.duration, target.tmp / COUNTS_FILE)
                    row = run_wrk(target, name, conn, args.duration, profile)
                    print(table([row]).splitlines()[1], file=sys.stderr, flush=True)
                    rows.append(row)
                    time.sleep(1.0)
        for target in targets if not args.profile else []:
            before, last = first[target.database], run_wrk(target, "healthz", 32, args.duration)
            noise[target.database] = {
                "healthz_32_first": {"rps": before["rps"], **before["latency_ms"],
                                     "other_cores": before["other_cores"],
                                     "reference_ms": before["reference_ms"]},
                "healthz_32_last": {"rps": last["rps"], **last["latency_ms"],
                                    "other_cores": last["other_cores"],
                                    "reference_ms": last["reference_ms"]},
                "rps_ratio_last_to_first": round(last["rps"] / before["rps"], 3),
            }

    result = {
        "label": args.label,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "machine": {"cpus": os.cpu_count()},
        "config": {"duration_s": args.duration, "connections": connections,
                   "server_env": server_env,
                   "owners": args.owners, "studios_per_owner": STUDIOS_PER_OWNER,
                   "page_limit": PAGE_LIMIT, "wrk_timeout": WRK_TIMEOUT,
                   "wrk_threads": "min(2, connections)"},
        "runs": rows,
        "noise": noise,
    }
    if args.profile:
        result["background_counts_per_s"] = background
        out_json = profiles / f"control_plane-{args.label}-profile.json"
    else:
        args.results.mkdir(parents=True, exist_ok=True)
        out_json = args.results / f"control_plane-{args.label}.json"
        plot(rows, args.results / f"control_plane-{args.label}.png", args.label)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows), file=sys.stderr)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
