"""punktfunk host: what the server refuses is exactly what specs/host.openapi.json says it
refuses (finding 12 of issue 13), and the device port survives malformed JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart

from tests import contract
from tests.host.conftest import Api, device_ports_env, running_app

LONG = "x" * 600
# (method, path, body): each is sent, and separately validated against the spec.
CASES: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/pair/pin", {"pin": "1234"}),
    ("POST", "/api/v1/pair/pin", {"pin": "1234567890123456"}),
    ("POST", "/api/v1/pair/pin", {"pin": "1234", "extra": [1, {"x": None}]}),
    ("POST", "/api/v1/pair/pin", {"pin": ""}),
    ("POST", "/api/v1/pair/pin", {"pin": "12a4"}),
    ("POST", "/api/v1/pair/pin", {"pin": "12345678901234567"}),
    ("POST", "/api/v1/pair/pin", {"pin": "١٢٣٤"}),  # Arabic-Indic digits are not ASCII
    ("POST", "/api/v1/pair/pin", {"pin": 1234}),
    ("POST", "/api/v1/pair/pin", {}),
    ("POST", "/api/v1/library/custom", {"title": "Game"}),
    ("POST", "/api/v1/library/custom", {"title": "Game", "extra": {"a": 1}}),
    ("POST", "/api/v1/library/custom", {"title": "Game", "art": None, "launch": None}),
    ("POST", "/api/v1/library/custom", {"title": "Game", "art": {"hero": "h", "other": 1},
                                        "launch": {"kind": "command", "value": "x", "y": 2}}),
    ("POST", "/api/v1/library/custom", {"title": ""}),
    ("POST", "/api/v1/library/custom", {"title": " \t "}),
    ("POST", "/api/v1/library/custom", {"title": LONG}),
    ("POST", "/api/v1/library/custom", {"title": " " * 100 + "x" * 500}),
    ("POST", "/api/v1/library/custom", {"title": "Game", "art": []}),
    ("POST", "/api/v1/library/custom", {"title": "Game", "art": {"hero": "u" * 2049}}),
    ("POST", "/api/v1/library/custom", {"title": "Game",
                                        "launch": {"kind": "webrtc", "value": "x"}}),
    ("POST", "/api/v1/library/custom", {"title": "Game",
                                        "launch": {"kind": "command", "value": "v" * 4097}}),
    ("POST", "/api/v1/library/custom", {"title": "Game", "launch": {"kind": "command"}}),
    ("PUT", "/api/v1/library/custom/0123456789abcdef", {"title": ""}),
    ("PUT", "/api/v1/library/custom/0123456789abcdef", {"title": "Game", "more": True}),
    ("POST", "/api/v1/native/pair/arm", {}),
    ("POST", "/api/v1/native/pair/arm", {"ttl_secs": None, "extra": 1}),
    ("POST", "/api/v1/native/pair/arm", {"ttl_secs": 60}),
    ("POST", "/api/v1/native/pair/arm", {"ttl_secs": -1}),
    ("POST", "/api/v1/native/pair/arm", {"ttl_secs": 2**31}),
    ("POST", "/api/v1/native/pair/arm", {"ttl_secs": "60"}),
    ("POST", "/api/v1/native/pending/7/approve", {}),
    ("POST", "/api/v1/native/pending/7/approve", {"name": None, "extra": 1}),
    ("POST", "/api/v1/native/pending/7/approve", {"name": "TV"}),
    ("POST", "/api/v1/native/pending/7/approve", {"name": ""}),
    ("POST", "/api/v1/native/pending/7/approve", {"name": "   "}),
    ("POST", "/api/v1/native/pending/7/approve", {"name": "n" * 129}),
]
VALIDATION_STATUSES = {400, 422}


@pytest.fixture
async def native_app(tmp_path: Path) -> AsyncIterator[Quart]:
    async with running_app(device_ports_env(tmp_path / "data")) as app:
        yield app


async def test_the_server_refuses_exactly_what_the_spec_refuses(native_app: Quart) -> None:
    api = Api(native_app)
    spec = contract.contract_for("host")
    disagreements = []
    for method, path, body in CASES:
        response = await api.call(method, path, json=body)  # replies are contract-checked
        refused = response.status_code in VALIDATION_STATUSES
        errors = spec.request_body_errors(method, path, body)
        if refused != bool(errors):
            disagreements.append((method, path, repr(body)[:80], response.status_code, errors))
    assert not disagreements, "\n".join(map(str, disagreements))


async def test_spec_documents_the_constraints_it_enforces() -> None:
    schemas = contract.contract_for("host").document["components"]["schemas"]
    assert schemas["SubmitPin"]["properties"]["pin"]["pattern"] == "^[0-9]{1,16}$"
    assert schemas["LaunchSpec"]["properties"]["kind"]["enum"] == ["steam_appid", "command"]


async def test_device_port_answers_malformed_json_with_400(native_app: Quart) -> None:
    port = native_app.extensions["mediagate"].settings.gamestream_http_port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for body in (b"[" * 100_000, b'{"fingerprint": "' + b"ab" * 32 + b'", "name": "\\ud800"}',
                     b'{"fingerprint": NaN}', b"\xff\xfe"):
            response = await http.post("/punktfunk/v1/knock", content=body,
                                       headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (body[:40], response.text)
            assert "error" in response.json()
