"""The real server in a subprocess: `mediagate serve` on an ephemeral loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.pg import free_port


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(data_dir: Path, env: dict[str, str] | None = None,
                 ready_path: str = "/api/health", timeout: float = 60,
                 port: int | None = None) -> RunningServer:
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    full_env.update({"MEDIAGATE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--bind", f"127.0.0.1:{port}"],
            env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", data_dir, log_path, full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + ready_path, timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not become ready:\n{server.log()}")
