"""`bench/control_plane.py --profile`: what one run costs inside the gateway.

While wrk runs, py-spy records the server (speedscope, 100 Hz, blocking samples), psutil
reads each thread's CPU time, and the counters of bench/instrument/sitecustomize.py (loaded
into the server through PYTHONPATH) count SQL statements, transactions, pool checkouts,
aiosqlite hand-offs, ORM loads and log records. Each is reported per request.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench.pyspy_summary import summarize

INSTRUMENT = Path(__file__).resolve().parent / "instrument"


def instrument_pythonpath(root: Path) -> str:
    """The server's PYTHONPATH that loads bench/instrument/sitecustomize.py."""
    return f"{INSTRUMENT}:{root}"


def instrumented_env(root: Path, counts_file: Path) -> dict[str, str]:
    """Server environment that loads the counters (sitecustomize) and names their file."""
    return {"PYTHONPATH": instrument_pythonpath(root), "CONTROL_PLANE_COUNTS": str(counts_file)}


def read_counts(pid: int, counts_file: Path, timeout: float = 5.0) -> Counter[str]:
    """The server's counters now; `gc.longest_pause_ms` is the longest pause since the
    previous read (the rest are running totals)."""
    counts_file.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not counts_file.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server wrote no counters (is sitecustomize loaded?)")
        time.sleep(0.02)
    return Counter(json.loads(counts_file.read_text()))


def thread_cpu(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def _thread_group(name: str, tid: int, pid: int) -> str:
    if tid == pid:
        return "main (event loop)"
    if "_connection_worker_thread" in name:
        return "aiosqlite workers"
    if "asyncio_" in name:
        return "asyncio default executor"
    return "other threads"


class RunProfile:
    """One profiled run: start() before wrk starts, finish(requests) after it ends."""

    def __init__(self, pid: int, py_spy: str, out: Path, duration: float,
                 counts_file: Path) -> None:
        self.pid, self.py_spy, self.out, self.duration = pid, py_spy, out, duration
        self.counts_file = counts_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.counts_before = read_counts(self.pid, self.counts_file)
        self.process = subprocess.Popen(
            [self.py_spy, "record", "--pid", str(self.pid), "--rate", "100",
             "--duration", f"{self.duration:g}", "--format", "speedscope",
             "--output", str(self.out), "--full-filenames", "--function"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # py-spy attaches
        self.threads_before = thread_cpu(self.pid)
        self.process_before = sum(psutil.Process(self.pid).cpu_times()[:2])

    def finish(self, requests: int) -> dict[str, Any]:
        threads_after = thread_cpu(self.pid)
        process_cpu = sum(psutil.Process(self.pid).cpu_times()[:2]) - self.process_before
        after = read_counts(self.pid, self.counts_file)
        longest_gc = after.pop("gc.longest_pause_ms", 0.0)
        self.counts_before.pop("gc.longest_pause_ms", None)
        counts = after - self.counts_before
        assert self.process is not None
        _, err = self.process.communicate(timeout=120)
        if self.process.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode()[-500:]}")
        names = {}
        for profile in json.loads(self.out.read_text())["profiles"]:
            parts = profile["name"].split(" ", 2)  # Thread <tid> "<name>"
            if len(parts) >= 2 and parts[1].isdigit():
                names[int(parts[1])] = parts[2] if len(parts) > 2 else ""
        groups: Counter[str] = Counter()
        for tid, after in threads_after.items():
            used = after - self.threads_before.get(tid, 0.0)
            groups[_thread_group(names.get(tid, ""), tid, self.pid)] += used
        groups["threads gone during the run"] = max(0.0, process_cpu - sum(groups.values()))
        per_request = max(requests, 1)
        return {
            "cpu_ms_per_req_by_thread": {
                k: round(1000 * v / per_request, 3) for k, v in groups.most_common()
            },
            "cpu_ms_per_req": round(1000 * process_cpu / per_request, 3),
            "counts_per_req": {
                k: round(v / per_request, 3) for k, v in sorted(counts.items())
            },
            "gc_longest_pause_ms": round(longest_gc, 2),
            "samples": summarize(self.out),
            "speedscope": self._compress(),
        }

    def _compress(self) -> str:
        """Kept gzipped (gunzip, then open in https://www.speedscope.app)."""
        packed = self.out.with_name(self.out.name + ".gz")
        packed.write_bytes(gzip.compress(self.out.read_bytes(), 9))
        self.out.unlink()
        return packed.name
