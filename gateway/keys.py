"""The instance secret and the keys derived from it.

`MEDIAGATE_SECRET_KEY` wins; otherwise a key is generated once into the data dir
(mode 0600) and reused. Every purpose gets its own HKDF-derived key, so rotating one
use never means reusing the raw secret elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_FILE = "secret_key"


@dataclass(frozen=True)
class InstanceSecret:
    value: bytes
    source: str
    """`env`, `file` or `generated`."""

    def derive(self, purpose: str, length: int = 32) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=length, salt=b"mediagate", info=purpose.encode()
        ).derive(self.value)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(b"mediagate-fingerprint:" + self.value).hexdigest()[:16]


def load_or_create_secret(data_dir: Path, configured: str | None) -> InstanceSecret:
    if configured:
        return InstanceSecret(configured.encode(), "env")
    path = data_dir / SECRET_FILE
    if path.exists():
        return InstanceSecret(path.read_text().strip().encode(), "file")
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return InstanceSecret(value.encode(), "generated")


def secrets_equal(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison of a presented credential with the expected one.

    Any presented text is fine (non-ASCII or unpaired surrogates from a header compare
    unequal instead of raising, which `hmac.compare_digest` does for non-ASCII str)."""

    def raw(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("utf-8", "replace")

    return hmac.compare_digest(raw(given), raw(expected))
