"""Native pairing: a SPAKE2 device against the device port, the PIN from the management API;
delegated approval of pending devices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from quart import Quart
from spake2 import SPAKE2_A
from sqlalchemy import update

from gateway.host.models import HostPendingDevice
from tests.host.conftest import TOKEN, Api, running_app


def device_url(app: Quart) -> str:
    return f"http://127.0.0.1:{app.extensions['mediagate'].settings.gamestream_http_port}"


def _mac(key: bytes, role: str, fingerprint: str, name: str) -> bytes:
    return hmac.new(key, f"punktfunk-pair {role}\n{fingerprint}\n{name}".encode(),
                    hashlib.sha256).digest()


async def spake2_pair(base: str, pin: str, fingerprint: str, name: str) -> httpx.Response:
    """The device side of the ceremony, as documented in gateway/host/native.py."""
    side = SPAKE2_A(pin.encode(), idA=b"punktfunk-device", idB=b"punktfunk-host")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        started = await http.post("/punktfunk/v1/pair/start", json={
            "name": name, "fingerprint": fingerprint,
            "spake2": base64.b64encode(side.start()).decode()})
        if started.status_code != 200:
            return started
        key = side.finish(base64.b64decode(started.json()["spake2"]))
        finished = await http.post("/punktfunk/v1/pair/finish", json={
            "ceremony": started.json()["ceremony"],
            "confirm": base64.b64encode(_mac(key, "device", fingerprint.lower(), name)).decode()})
        if finished.status_code == 200:
            # the host proves it knew the PIN too
            assert base64.b64decode(finished.json()["confirm"]) == _mac(
                key, "host", fingerprint.lower(), name)
        return finished


def _fingerprint() -> str:
    return hashlib.sha256(secrets.token_bytes(32)).hexdigest()


async def test_spake2_pairing_right_and_wrong_pin(device_app: Quart) -> None:
    api, base = Api(device_app), device_url(device_app)
    idle = await api.json("GET", "/api/v1/native/pair")
    assert idle == {"enabled": True, "armed": False, "expires_in_secs": None,
                    "paired_clients": 0, "pin": None}
    fingerprint = _fingerprint()
    not_armed = await spake2_pair(base, "0000", fingerprint, "iPad")
    assert not_armed.status_code == 409

    armed = await api.json("POST", "/api/v1/native/pair/arm", json={})
    pin = armed["pin"]
    assert armed["armed"] and len(pin) == 4 and pin.isdigit()
    assert 118 <= armed["expires_in_secs"] <= 120
    wrong = str((int(pin) + 1) % 10000).zfill(4)
    refused = await spake2_pair(base, wrong, fingerprint, "iPad")
    assert refused.status_code == 403 and refused.json() == {"error": "pairing failed"}
    assert await api.json("GET", "/api/v1/native/clients") == []

    paired = await spake2_pair(base, pin, fingerprint.upper(), "Living Room iPad")
    assert paired.status_code == 200
    assert paired.json()["fingerprint"] == fingerprint
    assert await api.json("GET", "/api/v1/native/clients") == [
        {"name": "Living Room iPad", "fingerprint": fingerprint}]
    after = await api.json("GET", "/api/v1/native/pair")
    assert not after["armed"] and after["pin"] is None and after["paired_clients"] == 1

    async with httpx.AsyncClient(base_url=base) as http:
        knock = await http.post("/punktfunk/v1/knock", json={"fingerprint": fingerprint})
    assert knock.status_code == 200 and knock.json()["paired"] is True

    path = f"/api/v1/native/clients/{fingerprint.upper()}"
    assert (await api.call("DELETE", path)).status_code == 204
    await api.json("DELETE", path, status=404)
    await api.json("DELETE", "/api/v1/native/clients/xyz", status=404)


async def test_spake2_window_expiry_disarm_and_brute_force(device_app: Quart) -> None:
    api, base = Api(device_app), device_url(device_app)
    native = device_app.extensions["mediagate"].services["host"].native
    assert (await api.json("POST", "/api/v1/native/pair/arm",
                           json={"ttl_secs": 1}))["expires_in_secs"] == 15
    assert (await api.json("POST", "/api/v1/native/pair/arm",
                           json={"ttl_secs": 100000}))["expires_in_secs"] == 600
    pin = (await api.json("POST", "/api/v1/native/pair/arm",
                          json={"ttl_secs": None}))["pin"]
    real_clock = native.clock
    native.clock = lambda: real_clock() + 121  # the 120 s window has passed
    try:
        expired = await spake2_pair(base, pin, _fingerprint(), "late")
        assert expired.status_code == 409
        assert not (await api.json("GET", "/api/v1/native/pair"))["armed"]
    finally:
        native.clock = real_clock

    pin = (await api.json("POST", "/api/v1/native/pair/arm", json={}))["pin"]
    assert (await api.call("DELETE", "/api/v1/native/pair")).status_code == 204
    assert (await spake2_pair(base, pin, _fingerprint(), "x")).status_code == 409

    pin = (await api.json("POST", "/api/v1/native/pair/arm", json={}))["pin"]
    wrong = str((int(pin) + 5) % 10000).zfill(4)
    for _ in range(3):
        assert (await spake2_pair(base, wrong, _fingerprint(), "guess")).status_code == 403
    # three failures close the window: the right PIN no longer works
    assert (await spake2_pair(base, pin, _fingerprint(), "x")).status_code == 409
    assert await api.json("GET", "/api/v1/native/clients") == []

    async with httpx.AsyncClient(base_url=base) as http:
        bad = await http.post("/punktfunk/v1/pair/start",
                              json={"fingerprint": "zz", "spake2": "AA=="})
        assert bad.status_code == 400
        await api.json("POST", "/api/v1/native/pair/arm", json={})
        garbage = await http.post("/punktfunk/v1/pair/start", json={
            "fingerprint": _fingerprint(), "spake2": base64.b64encode(b"A" * 33).decode()})
        assert garbage.status_code == 403


async def _knock(base: str, fingerprint: str, name: str | None) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/punktfunk/v1/knock",
                                   json={"fingerprint": fingerprint, "name": name})
    assert response.status_code == 403, response.text
    return response.json()


async def test_pending_devices_approve_and_deny(device_app: Quart) -> None:
    api, base = Api(device_app), device_url(device_app)
    tv, laptop, stale = _fingerprint(), _fingerprint(), _fingerprint()
    first = await _knock(base, tv, "Living Room TV")
    again = await _knock(base, tv, "Living Room TV")
    assert first["pending_id"] == again["pending_id"]
    other = await _knock(base, laptop, None)
    old = await _knock(base, stale, "old")
    db = device_app.extensions["mediagate"].db
    async with db.session() as session:
        await session.execute(update(HostPendingDevice).where(
            HostPendingDevice.id == old["pending_id"]).values(
            last_seen=datetime.now(UTC) - timedelta(minutes=11)))

    pending = await api.json("GET", "/api/v1/native/pending")
    assert [(p["name"], p["fingerprint"]) for p in pending] == [
        ("Living Room TV", tv), (f"device {laptop[:8]}", laptop)]
    assert all(0 <= p["age_secs"] < 60 for p in pending)
    await api.json("POST", f"/api/v1/native/pending/{old['pending_id']}/approve", json={},
                   status=404)

    approved = await api.json("POST", f"/api/v1/native/pending/{first['pending_id']}/approve",
                              json={})
    assert approved == {"name": "Living Room TV", "fingerprint": tv}
    renamed = await api.json("POST", f"/api/v1/native/pending/{other['pending_id']}/approve",
                             json={"name": "Enrico's MacBook"})
    assert renamed == {"name": "Enrico's MacBook", "fingerprint": laptop}
    phone = _fingerprint()
    knocked = await _knock(base, phone, "phone")
    pending = await api.json("GET", "/api/v1/native/pending")
    assert [p["id"] for p in pending] == [knocked["pending_id"]]
    assert (await api.call(
        "POST", f"/api/v1/native/pending/{pending[0]['id']}/deny")).status_code == 204
    await api.json("POST", f"/api/v1/native/pending/{pending[0]['id']}/deny", status=404)
    await api.json("POST", "/api/v1/native/pending/abc/deny", status=404)
    assert await api.json("GET", "/api/v1/native/pending") == []
    assert await api.json("GET", "/api/v1/native/clients") == [
        {"name": "Living Room TV", "fingerprint": tv},
        {"name": "Enrico's MacBook", "fingerprint": laptop}]
    async with httpx.AsyncClient(base_url=base) as http:
        paired = await http.post("/punktfunk/v1/knock", json={"fingerprint": tv})
    assert paired.status_code == 200
    # denial is not a blocklist: the phone knocks again
    assert (await _knock(base, phone, "phone"))["pending_id"] > 0


async def test_native_disabled_without_device_port(tmp_path: Path) -> None:
    async with running_app({"MEDIAGATE_DATA_DIR": str(tmp_path / "d"),
                            "PUNKTFUNK_MGMT_TOKEN": TOKEN}) as app:
        api = Api(app)
        assert (await api.json("GET", "/api/v1/native/pair"))["enabled"] is False
        await api.json("POST", "/api/v1/native/pair/arm", json={}, status=503)
        await api.json("DELETE", "/api/v1/native/pair", status=503)
        assert await api.json("GET", "/api/v1/native/pending") == []


async def test_device_endpoints_are_rate_limited_and_pending_is_bounded(
        device_app: Quart) -> None:
    api, base = Api(device_app), device_url(device_app)
    statuses = []
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(30):
            response = await http.post("/punktfunk/v1/knock",
                                       json={"fingerprint": _fingerprint()})
            statuses.append(response.status_code)
    assert statuses[:20] == [403] * 20 and 429 in statuses[20:]
    store = device_app.extensions["mediagate"].services["host"].store
    for index in range(110):
        await store.knock(_fingerprint(), f"flood {index}")
    pending = await api.json("GET", "/api/v1/native/pending")
    assert len(pending) == 100
    assert pending[-1]["name"] == "flood 109"
