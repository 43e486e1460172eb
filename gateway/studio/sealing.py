"""Destination stream keys at rest: AES-256-GCM under a key derived from the instance secret.

The destination id is the associated data, so a sealed key copied onto another row
does not open.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.keys import InstanceSecret

PURPOSE = "studio-stream-key"


class StreamKeySealer:
    def __init__(self, secret: InstanceSecret) -> None:
        self._aead = AESGCM(secret.derive(PURPOSE))

    def seal(self, destination_id: str, stream_key: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, stream_key.encode(), destination_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, destination_id: str, sealed: str) -> str | None:
        """The stream key, or None when it cannot be opened (other secret, tampered row)."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:12], raw[12:], destination_id.encode()).decode()
        except (ValueError, InvalidTag):
            return None
