"""The host's shared state on SQLite and PostgreSQL: identity, pinned clients (20-year
certificates), native clients, pending devices."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from gateway.db import Database
from gateway.host.gamestream import client_row
from gateway.host.models import HostPendingDevice
from gateway.host.service import HostStore, NotFound
from gateway.migrate import upgrade


def _cert() -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NVIDIA GameStream Client")])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + timedelta(days=7300))
            .sign(key, hashes.SHA256()))


async def test_store_round_trips(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        store = HostStore(db)
        uniqueid = await store.uniqueid()
        assert await store.uniqueid() == uniqueid
        other = Database(database_url)
        try:
            assert await HostStore(other).uniqueid() == uniqueid  # another replica agrees
        finally:
            await other.close()

        row = client_row(_cert())
        await store.pin_client(row)
        await store.pin_client(client_row(_cert()))
        listed = await store.paired_clients()
        assert len(listed) == 2
        found = await store.paired_client(row.fingerprint)
        assert found is not None and found.not_after_unix > 2**31  # past 2038
        assert await store.unpair_client(row.fingerprint) is True
        assert await store.unpair_client(row.fingerprint) is False

        device = await store.knock("a" * 64, "TV")
        again = await store.knock("a" * 64, "TV (renamed)")
        assert again.id == device.id
        old = await store.knock("b" * 64, "old")
        async with db.session() as session:
            await session.execute(update(HostPendingDevice).where(
                HostPendingDevice.id == old.id).values(
                last_seen=datetime.now(UTC) - timedelta(minutes=10, seconds=5)))
        assert [p.fingerprint for p in await store.pending()] == ["a" * 64]
        client = await store.approve(device.id, None)
        assert (client.name, client.fingerprint) == ("TV (renamed)", "a" * 64)
        assert await store.pending() == []
        try:
            await store.deny(device.id)
        except NotFound:
            pass
        else:
            raise AssertionError("deny of an approved request must be 404")
        await store.pin_native("a" * 64, "Living Room TV")
        assert [(c.name, c.fingerprint) for c in await store.native_clients()] == [
            ("Living Room TV", "a" * 64)]
        assert await store.unpair_native("a" * 64) is True
        assert await store.native_clients() == []
    finally:
        await db.close()


def test_admin_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEDIAGATE_", "PUNKTFUNK_"))}
    env |= {"MEDIAGATE_DATA_DIR": str(tmp_path / "data"), "MEDIAGATE_BIND": "0.0.0.0:18080"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    first = json.loads(run("host-token").stdout)
    assert first["required"] is True and len(first["token"]) == 64
    assert json.loads(run("host-token").stdout)["token"] == first["token"]
    assert json.loads(run("host-clients", "list").stdout) == {"gamestream": [], "native": []}
    missing = run("host-clients", "unpair", "0" * 64)
    assert missing.returncode == 1 and "no paired client" in missing.stderr
