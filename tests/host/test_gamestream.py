"""GameStream pairing with a test client that runs Moonlight's side of the ceremony (written
from the public protocol description: AES-ECB under SHA-256(salt + PIN), SHA-256 challenges
over certificate signatures, RSA signatures of the secrets)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import ssl
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID
from quart import Quart

from tests.host.conftest import Api


@pytest.fixture
def gs_app(device_app: Quart) -> Quart:
    return device_app


def _aes(key: bytes, data: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def _xml(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.text)
    return {child.tag: child.text or "" for child in root} | {"@status": root.get("status_code")}


@dataclass
class Outcome:
    paired: bool
    server_proved_pin: bool


class MoonlightClient:
    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NVIDIA GameStream Client")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=7300)).sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.fingerprint = hashlib.sha256(
            self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        self.cert_file, self.key_file = tmp / "client.pem", tmp / "client.key"
        self.cert_file.write_bytes(self.pem)
        self.key_file.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.uniqueid = "0123456789ABCDEF"
        self.server_pem: bytes | None = None

    def _params(self, **extra: str) -> dict[str, str]:
        return {"uniqueid": self.uniqueid, "uuid": uuid.uuid4().hex, "devicename": "roth",
                "updateState": "1", **extra}

    async def pair(self, http: httpx.AsyncClient, pin: str, operator: asyncio.Task[None]
                   ) -> Outcome:
        salt = secrets.token_bytes(16)
        first = _xml(await http.get("/pair", params=self._params(
            phrase="getservercert", salt=salt.hex(), clientcert=self.pem.hex())))
        await operator
        if first.get("paired") != "1":
            return Outcome(False, False)
        self.server_pem = bytes.fromhex(first["plaincert"])
        server_cert = x509.load_pem_x509_certificate(self.server_pem)
        key = hashlib.sha256(salt + pin.encode()).digest()[:16]

        challenge = secrets.token_bytes(16)
        second = _xml(await http.get("/pair", params=self._params(
            clientchallenge=_aes(key, challenge).hex())))
        decrypted = _aes(key, bytes.fromhex(second["challengeresponse"]), decrypt=True)
        server_response, server_challenge = decrypted[:32], decrypted[32:48]

        client_secret = secrets.token_bytes(16)
        digest = hashlib.sha256(server_challenge + self.cert.signature + client_secret).digest()
        third = _xml(await http.get("/pair", params=self._params(
            serverchallengeresp=_aes(key, digest).hex())))
        pairing_secret = bytes.fromhex(third["pairingsecret"])
        server_secret, server_signature = pairing_secret[:16], pairing_secret[16:]
        public_key = server_cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(server_signature, server_secret, padding.PKCS1v15(), hashes.SHA256())
        proved = server_response == hashlib.sha256(
            challenge + server_cert.signature + server_secret).digest()

        signature = self.key.sign(client_secret, padding.PKCS1v15(), hashes.SHA256())
        fourth = _xml(await http.get("/pair", params=self._params(
            clientpairingsecret=(client_secret + signature).hex())))
        return Outcome(fourth.get("paired") == "1", proved)

    def tls(self) -> ssl.SSLContext:
        assert self.server_pem is not None
        context = ssl.create_default_context(cadata=self.server_pem.decode())
        context.check_hostname = False  # Moonlight pins the certificate, not a name
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


async def _operator_types(api: Api, pin: str) -> None:
    for _ in range(100):
        if (await api.json("GET", "/api/v1/pair"))["pin_pending"]:
            break
        await asyncio.sleep(0.05)
    status = await api.json("GET", "/api/v1/status")
    assert status["pin_pending"] is True
    assert (await api.call("POST", "/api/v1/pair/pin", json={"pin": pin})).status_code == 204
    assert (await api.json("GET", "/api/v1/pair"))["pin_pending"] is False


def _ports(app: Quart) -> tuple[str, str]:
    settings = app.extensions["mediagate"].settings
    return (f"http://127.0.0.1:{settings.gamestream_http_port}",
            f"https://127.0.0.1:{settings.gamestream_https_port}")


async def test_moonlight_pairs_and_is_refused_after_unpairing(gs_app: Quart,
                                                              tmp_path: Path) -> None:
    api = Api(gs_app)
    http_url, https_url = _ports(gs_app)
    client = MoonlightClient(tmp_path)
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        info = _xml(await http.get("/serverinfo", params={"uniqueid": client.uniqueid}))
        host = await api.json("GET", "/api/v1/host")
        assert info["uniqueid"] == host["uniqueid"] and info["PairStatus"] == "0"
        assert info["HttpsPort"] == https_url.rsplit(":", 1)[1]
        operator = asyncio.create_task(_operator_types(api, "4711"))
        outcome = await client.pair(http, "4711", operator)
    assert outcome == Outcome(paired=True, server_proved_pin=True)

    clients = await api.json("GET", "/api/v1/clients")
    assert len(clients) == 1
    paired = clients[0]
    assert paired["fingerprint"] == client.fingerprint
    assert paired["subject"] == "CN=NVIDIA GameStream Client"
    assert paired["not_after_unix"] - paired["not_before_unix"] > 7000 * 86400
    assert (await api.json("GET", "/api/v1/status"))["paired_clients"] == 1

    async with httpx.AsyncClient(base_url=https_url, verify=client.tls(), timeout=10) as https:
        challenge = _xml(await https.get("/pair", params=client._params(
            phrase="pairchallenge")))
        assert challenge["paired"] == "1"
        secure_info = _xml(await https.get("/serverinfo"))
        assert secure_info["PairStatus"] == "1"

    stranger = MoonlightClient(tmp_path / "stranger")
    stranger.server_pem = client.server_pem
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        async with httpx.AsyncClient(base_url=https_url, verify=stranger.tls(),
                                     timeout=10) as https:
            await https.get("/serverinfo")

    await api.json("DELETE", "/api/v1/clients/nothex", status=400)
    await api.json("DELETE", f"/api/v1/clients/{'0' * 64}", status=404)
    response = await api.call("DELETE", f"/api/v1/clients/{client.fingerprint.upper()}")
    assert response.status_code == 204
    assert await api.json("GET", "/api/v1/clients") == []
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        async with httpx.AsyncClient(base_url=https_url, verify=client.tls(),
                                     timeout=10) as https:
            await https.get("/serverinfo")


async def test_wrong_pin_pairs_nothing_and_unpaired_tls_is_refused(gs_app: Quart,
                                                                   tmp_path: Path) -> None:
    api = Api(gs_app)
    http_url, https_url = _ports(gs_app)
    client = MoonlightClient(tmp_path)
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        operator = asyncio.create_task(_operator_types(api, "9999"))
        outcome = await client.pair(http, "1234", operator)
        # the client notices the host did not know its PIN, and the host pins nothing
        assert outcome == Outcome(paired=False, server_proved_pin=False)
        assert await api.json("GET", "/api/v1/clients") == []
        # phases out of order or without a handshake are refused
        stray = _xml(await http.get("/pair", params=client._params(clientchallenge="00" * 16)))
        assert stray["paired"] == "0"
        bad = _xml(await http.get("/pair", params=client._params(
            phrase="getservercert", salt="zz", clientcert="00")))
        assert bad["@status"] == "400"
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        async with httpx.AsyncClient(base_url=https_url, verify=client.tls(),
                                     timeout=10) as https:
            await https.get("/serverinfo")
