"""GameStream (Moonlight) pairing, host side.

The ceremony, as Moonlight runs it against nvhttp (plain HTTP, then HTTPS):

1. `getservercert` (salt, client cert PEM): the host parks the handshake until the operator
   types the PIN the client displays (`POST /api/v1/pair/pin`); then AES key =
   SHA-256(salt + PIN)[:16] and the answer carries the host certificate.
2. `clientchallenge`: AES-ECB(client challenge). The host answers AES-ECB of
   SHA-256(challenge + host cert signature + host secret) + a host challenge.
3. `serverchallengeresp`: AES-ECB(SHA-256(host challenge + client cert signature + client
   secret)). The host answers its secret and an RSA signature over it.
4. `clientpairingsecret`: client secret + its RSA signature. The host checks the signature
   and the hash from step 3; only then is the client certificate pinned.
5. `pairchallenge` over HTTPS with the pinned certificate.

A wrong PIN makes the AES keys differ, so step 4's hash cannot match: nothing is pinned.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from gateway.host.models import HostPairedClient

log = logging.getLogger("mediagate.host")

PIN_WAIT_SECONDS = 120.0
SESSION_SECONDS = 300.0
MAX_HANDSHAKES = 16


def fingerprint_of(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def aes_ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # the protocol's choice, not ours
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def pin_key(salt: bytes, pin: str) -> bytes:
    return hashlib.sha256(salt + pin.encode()).digest()[:16]


def xml(status: int = 200, message: str = "OK", **fields: Any) -> str:
    body = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<root status_code="{status}" '
            f'status_message="{escape(message)}">{body}</root>')


@dataclass
class HostIdentity:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_pem: bytes


def load_or_create_identity(directory: Path) -> HostIdentity:
    """The host certificate, generated once (RSA-2048, self-signed, 20 years)."""
    cert_path, key_path = directory / "gamestream_cert.pem", directory / "gamestream_key.pem"
    if cert_path.exists() and key_path.exists():
        cert_pem = cert_path.read_bytes()
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return HostIdentity(x509.load_pem_x509_certificate(cert_pem), key, cert_pem)
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mediagate GameStream Host")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=7300))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return HostIdentity(cert, key, cert_pem)


@dataclass
class _Handshake:
    uniqueid: str
    salt: bytes
    client_cert: x509.Certificate
    pin: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop()
                                     .create_future())
    key: bytes | None = None
    server_secret: bytes = b""
    server_challenge: bytes = b""
    client_hash: bytes = b""
    expires: float = 0.0


class GameStreamPairing:
    def __init__(self, store: Any, identity: HostIdentity,
                 pin_wait: float = PIN_WAIT_SECONDS) -> None:
        self.store = store
        self.identity = identity
        self.pin_wait = pin_wait
        self._handshakes: dict[str, _Handshake] = {}
        self._waiting: list[_Handshake] = []

    @property
    def pin_pending(self) -> bool:
        return any(not h.pin.done() for h in self._waiting)

    def submit_pin(self, pin: str) -> bool:
        """Deliver the operator's PIN to the oldest parked handshake."""
        for handshake in self._waiting:
            if not handshake.pin.done():
                handshake.pin.set_result(pin)
                return True
        return False

    async def pair(self, params: dict[str, str]) -> str:
        """One `/pair` request on the plain HTTP port; returns the XML answer."""
        uniqueid = params.get("uniqueid", "")
        phrase = params.get("phrase")
        try:
            if phrase == "getservercert":
                return await self._getservercert(uniqueid, params)
            handshake = self._handshakes.get(uniqueid)
            if handshake is None or handshake.key is None or handshake.expires < time.monotonic():
                return xml(paired=0)
            if "clientchallenge" in params:
                return self._clientchallenge(handshake, bytes.fromhex(params["clientchallenge"]))
            if "serverchallengeresp" in params:
                return self._serverchallengeresp(
                    handshake, bytes.fromhex(params["serverchallengeresp"]))
            if "clientpairingsecret" in params:
                return await self._clientpairingsecret(
                    handshake, bytes.fromhex(params["clientpairingsecret"]))
        except ValueError:
            self._handshakes.pop(uniqueid, None)
            return xml(paired=0)
        return xml(400, "unknown pairing phrase", paired=0)

    async def _getservercert(self, uniqueid: str, params: dict[str, str]) -> str:
        try:
            salt = bytes.fromhex(params.get("salt", ""))
            cert = x509.load_pem_x509_certificate(bytes.fromhex(params.get("clientcert", "")))
        except ValueError:
            return xml(400, "bad salt or client certificate", paired=0)
        if len(salt) != 16:
            return xml(400, "bad salt", paired=0)
        previous = self._handshakes.pop(uniqueid, None)
        if previous is not None and not previous.pin.done():
            previous.pin.cancel()
        now = time.monotonic()
        for stale in [u for u, h in self._handshakes.items() if h.key and h.expires < now]:
            del self._handshakes[stale]
        if len(self._handshakes) >= MAX_HANDSHAKES:
            return xml(503, "too many pairing attempts in progress", paired=0)
        handshake = _Handshake(uniqueid, salt, cert)
        self._handshakes[uniqueid] = handshake
        self._waiting.append(handshake)
        try:
            pin = await asyncio.wait_for(asyncio.shield(handshake.pin), self.pin_wait)
        except (TimeoutError, asyncio.CancelledError):
            if self._handshakes.get(uniqueid) is handshake:
                del self._handshakes[uniqueid]
            return xml(paired=0)
        finally:
            with contextlib.suppress(ValueError):
                self._waiting.remove(handshake)
            if not handshake.pin.done():
                handshake.pin.cancel()
        handshake.key = pin_key(salt, pin)
        handshake.expires = time.monotonic() + SESSION_SECONDS
        return xml(paired=1, plaincert=self.identity.cert_pem.hex())

    def _clientchallenge(self, handshake: _Handshake, encrypted: bytes) -> str:
        assert handshake.key is not None
        challenge = aes_ecb(handshake.key, encrypted, decrypt=True)
        handshake.server_secret = secrets.token_bytes(16)
        handshake.server_challenge = secrets.token_bytes(16)
        digest = hashlib.sha256(
            challenge + self.identity.cert.signature + handshake.server_secret).digest()
        response = aes_ecb(handshake.key, digest + handshake.server_challenge)
        return xml(paired=1, challengeresponse=response.hex())

    def _serverchallengeresp(self, handshake: _Handshake, encrypted: bytes) -> str:
        assert handshake.key is not None
        if not handshake.server_secret:
            raise ValueError("out of order")
        handshake.client_hash = aes_ecb(handshake.key, encrypted, decrypt=True)
        signature = self.identity.key.sign(handshake.server_secret, padding.PKCS1v15(),
                                           hashes.SHA256())
        return xml(paired=1, pairingsecret=(handshake.server_secret + signature).hex())

    async def _clientpairingsecret(self, handshake: _Handshake, data: bytes) -> str:
        self._handshakes.pop(handshake.uniqueid, None)
        if not handshake.client_hash or len(data) <= 16:
            return xml(paired=0)
        client_secret, signature = data[:16], data[16:]
        cert = handshake.client_cert
        expected = hashlib.sha256(
            handshake.server_challenge + cert.signature + client_secret).digest()
        if expected != handshake.client_hash[:32]:
            log.warning("gamestream: pairing of %s failed (wrong PIN)", handshake.uniqueid)
            return xml(paired=0)
        try:
            public_key = cert.public_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(signature, client_secret, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, AssertionError, ValueError):
            log.warning("gamestream: pairing of %s failed (bad signature)", handshake.uniqueid)
            return xml(paired=0)
        await self.store.pin_client(client_row(cert))
        return xml(paired=1)


def client_row(cert: x509.Certificate) -> HostPairedClient:
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        subject: str | None = cert.subject.rfc4514_string()
    except ValueError:
        subject = None
    return HostPairedClient(
        fingerprint=fingerprint_of(der),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        subject=subject[:512] if subject else None,
        not_before_unix=int(cert.not_valid_before_utc.timestamp()),
        not_after_unix=int(cert.not_valid_after_utc.timestamp()),
        paired_at=datetime.now(UTC),
    )
