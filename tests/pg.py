"""A real PostgreSQL server for the tests, started from Debian's `postgresql` binaries."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries are missing: install Debian's `postgresql` "
            "(scripts/test does this)"
        )
    return Path(found[-1]).parent


@dataclass
class PostgresServer:
    root: Path
    port: int
    bindir: Path
    user: str = "mediagate"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:  # postgres refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> None:
        data = self.root / "data"
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w",
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=200",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                  "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", self.user, "-d", "postgres", "-c", f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_postgres(root: Path) -> PostgresServer:
    root.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(root=root, port=free_port(), bindir=_bindir())
    server.start()
    return server
