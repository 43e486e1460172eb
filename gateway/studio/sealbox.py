"""Secrets at rest for part 2 (webhook secrets, OAuth tokens): AES-256-GCM per purpose.

Same construction as `sealing.StreamKeySealer`, with the key derived for a caller-chosen
purpose; the row id is the associated data, so a sealed value copied to another row does
not open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.keys import InstanceSecret


class SealBox:
    def __init__(self, secret: InstanceSecret, purpose: str) -> None:
        self._aead = AESGCM(secret.derive(purpose))

    def seal(self, row_id: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), row_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, row_id: str, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:12], raw[12:], row_id.encode()).decode()
        except (ValueError, InvalidTag):
            return None
