"""The management token: configured, or generated once into the data dir.

Without `PUNKTFUNK_MGMT_TOKEN` a loopback-bound gateway answers without a token (as upstream
does for a host started without one); bound anywhere else it generates a token once into
`<data dir>/punktfunk_mgmt_token` (upstream's env-line format, mode 0600), prints it at the
first start and requires it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path

from gateway.keys import secrets_equal
from gateway.settings import Settings

TOKEN_FILE = "punktfunk_mgmt_token"
ENV_NAME = "PUNKTFUNK_MGMT_TOKEN"

log = logging.getLogger("mediagate.host")


def is_loopback_bind(settings: Settings) -> bool:
    host, _ = settings.bind_host_port
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_token_file(path: Path) -> str | None:
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == ENV_NAME and value.strip():
            return value.strip()
    return None


def generated_token(data_dir: Path) -> str:
    """The token stored in the data dir, created (and printed once) when missing."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = _read_token_file(path)
        if token:
            return token
        path.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race
        return _read_token_file(path) or token
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{ENV_NAME}={token}\n")
    # Printed once, on purpose, outside logging (whose redactor would hide it).
    print(f"punktfunk management token (stored in {path}): {token}", file=sys.stderr,
          flush=True)
    return token


def resolve_token(settings: Settings) -> str | None:
    """The token every management route requires, or None when the API is open."""
    if settings.punktfunk_mgmt_token is not None:
        return settings.punktfunk_mgmt_token.get_secret_value()
    if is_loopback_bind(settings):
        return None
    return generated_token(settings.data_dir)


def bearer_matches(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets_equal(value.strip(), token)
