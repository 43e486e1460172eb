"""Native (punktfunk/1) pairing: the host mints a PIN, the device proves it knows it with
SPAKE2 and gets its certificate fingerprint pinned.

The ceremony (served on the device port, see `devices.py`):

1. `POST /punktfunk/v1/pair/start` `{name, fingerprint, spake2}`: `spake2` is the base64 of
   the device's SPAKE2 side-A message for password = the PIN (UTF-8), idA = `punktfunk-device`,
   idB = `punktfunk-host`. The host answers `{ceremony, spake2}` with its side-B message.
2. Both sides now hold the SPAKE2 key K. The device sends
   `POST /punktfunk/v1/pair/finish` `{ceremony, confirm}` with
   `confirm = base64(HMAC-SHA256(K, "punktfunk-pair device\\n" + fingerprint + "\\n" + name))`
   (fingerprint in lowercase hex, name as the host echoes it: trimmed, or
   `device <first 8 hex>` when none was given).
   On a match the host pins the fingerprint and answers
   `{fingerprint, name, confirm}` where its own confirm is the same HMAC over
   `"punktfunk-pair host\\n" + fingerprint + "\\n" + name` (the device checks it); a wrong PIN
   gets 403 and never an oracle, and three wrong attempts close the window.

The PIN never crosses the wire; the fingerprint and name are bound into the confirmation so
nobody without the PIN can substitute their own certificate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spake2 import SPAKE2_B

from gateway.host.models import HostNativeClient

ID_DEVICE = b"punktfunk-device"
ID_HOST = b"punktfunk-host"
DEFAULT_TTL = 120
MIN_TTL, MAX_TTL = 15, 600
MAX_FAILURES = 3
CEREMONY_SECONDS = 60
PIN_DIGITS = 4


class PairingClosed(Exception):
    """No window is open (or it expired)."""


class PairingFailed(Exception):
    """The device did not prove knowledge of the PIN."""


class UnknownCeremony(Exception):
    pass


def confirmation(key: bytes, role: str, fingerprint: str, name: str) -> bytes:
    message = f"punktfunk-pair {role}\n{fingerprint}\n{name}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass
class _Ceremony:
    key: bytes
    fingerprint: str
    name: str
    expires: float


class NativePairing:
    def __init__(self, store: Any, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.enabled = enabled
        self.clock = clock
        self.pin: str | None = None
        self.expires_at: float | None = None
        self.failures = 0
        self._ceremonies: dict[str, _Ceremony] = {}

    @property
    def armed(self) -> bool:
        if self.pin is None:
            return False
        if self.expires_at is not None and self.clock() >= self.expires_at:
            self.disarm()
            return False
        return True

    def arm(self, ttl_secs: int | None = None) -> str:
        ttl = DEFAULT_TTL if ttl_secs is None else min(MAX_TTL, max(MIN_TTL, ttl_secs))
        self.pin = f"{secrets.randbelow(10 ** PIN_DIGITS):0{PIN_DIGITS}d}"
        self.expires_at = self.clock() + ttl
        self.failures = 0
        self._ceremonies.clear()
        return self.pin

    def disarm(self) -> None:
        self.pin = None
        self.expires_at = None
        self._ceremonies.clear()

    def status(self, paired_clients: int) -> dict[str, Any]:
        armed = self.armed
        expires = None
        if armed and self.expires_at is not None:
            expires = max(0, round(self.expires_at - self.clock()))
        return {"enabled": self.enabled, "armed": armed, "expires_in_secs": expires,
                "paired_clients": paired_clients, "pin": self.pin if armed else None}

    async def start(self, name: str, fingerprint: str, message: bytes) -> tuple[str, bytes]:
        """Step 1: the host's SPAKE2 message for a device's; raises PairingClosed."""
        if not self.armed or self.pin is None:
            raise PairingClosed
        pin = self.pin

        def run() -> tuple[bytes, bytes]:
            side = SPAKE2_B(pin.encode(), idA=ID_DEVICE, idB=ID_HOST)
            outbound = side.start()
            return outbound, side.finish(message)

        try:
            outbound, key = await asyncio.to_thread(run)
        except Exception as exc:  # the library raises many types for a malformed element
            raise PairingFailed(f"bad SPAKE2 message: {type(exc).__name__}") from exc
        now = self.clock()
        for cid in [c for c, v in self._ceremonies.items() if v.expires <= now]:
            del self._ceremonies[cid]
        ceremony_id = secrets.token_urlsafe(16)
        self._ceremonies[ceremony_id] = _Ceremony(key, fingerprint, name, now + CEREMONY_SECONDS)
        return ceremony_id, outbound

    async def finish(self, ceremony_id: str, confirm: bytes) -> tuple[HostNativeClient, bytes]:
        """Step 2: verify the device's confirmation, pin it; returns the host's confirm."""
        if not self.armed:
            raise PairingClosed
        ceremony = self._ceremonies.pop(ceremony_id, None)
        if ceremony is None or ceremony.expires <= self.clock():
            raise UnknownCeremony
        expected = confirmation(ceremony.key, "device", ceremony.fingerprint, ceremony.name)
        if not hmac.compare_digest(expected, confirm):
            self.failures += 1
            if self.failures >= MAX_FAILURES:
                self.disarm()
            raise PairingFailed("PIN mismatch")
        client = await self.store.pin_native(ceremony.fingerprint, ceremony.name)
        self.disarm()
        return client, confirmation(ceremony.key, "host", ceremony.fingerprint, ceremony.name)
