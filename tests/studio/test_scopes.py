"""The scope matrix and write gating, driven by `x-required-scope` / `x-write-gated` in the spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart

from gateway.specs import SpecStore
from gateway.studio.apikeys import ALL_SCOPES
from tests.studio.conftest import StudioClient, make_key

PUBLIC = ("/v1/health", "/v1/openapi.json")
BODY = {"name": "x", "platform": "custom", "type": "webrtc-input", "enabled": False}


@dataclass(frozen=True)
class Op:
    method: str
    template: str
    scope: str | None
    gated: bool

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def operations() -> list[Op]:
    """Every operation an API key reaches (routes authorised by a signed URL, an OAuth
    callback or a viewer token carry no scope and are tested with their own credentials)."""
    found = []
    for template, item in SpecStore().get("studio")["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "patch", "delete", "put"):
                continue
            if op["x-required-scope"] is None and template not in PUBLIC:
                continue
            found.append(Op(method.upper(), template, op["x-required-scope"],
                            op["x-write-gated"]))
    return found


OPS = operations()


async def _fixture_ids(studio: StudioClient, key: str) -> dict[str, str]:
    sid = (await studio.call("POST", "/v1/studios", key=key, json_body={"name": "s"})).json()["id"]
    src = (await studio.call("POST", f"/v1/studios/{sid}/sources", key=key,
                             json_body={"name": "cam", "type": "webrtc-input"})).json()["id"]
    dst = (await studio.call("POST", f"/v1/studios/{sid}/destinations", key=key,
                             json_body={"name": "d", "platform": "custom", "enabled": False,
                                        "rtmpUrl": "rtmp://127.0.0.1:9/live"})).json()["id"]
    return {"id": sid, "sourceId": src, "destId": dst, "sessionId": "none"}


async def _call(studio: StudioClient, op: Op, ids: dict[str, str], key: str) -> Any:
    path = op.template
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    if op.template.endswith("/whip"):
        return await studio.call(op.method, path, key=key, data=b"v=0\r\n",
                                 headers={"Content-Type": "application/sdp"})
    body = BODY if op.method in ("POST", "PATCH") and not op.template.endswith(
        ("go-live", "go-offline")) else None
    return await studio.call(op.method, path, key=key, json_body=body)


def test_every_operation_declares_scope_and_gating() -> None:
    assert len(OPS) >= 17
    for op in OPS:
        assert op.scope is None or op.scope in ALL_SCOPES, op
        assert op.gated == (op.method != "GET" and op.scope is not None
                            and not op.template.endswith("{sessionId}")), op


async def test_a_key_per_scope_is_allowed_exactly_its_routes(app: Quart,
                                                             studio: StudioClient) -> None:
    admin = await make_key(app, "matrix", ALL_SCOPES)
    keys = {scope: await make_key(app, "matrix", [scope]) for scope in ALL_SCOPES}
    checked = 0
    for op in OPS:
        ids = await _fixture_ids(studio, admin)
        for scope, key in keys.items():
            reply = await _call(studio, op, ids, key)
            if op.scope is None:
                assert reply.status == 200, (str(op), scope)
                continue
            if scope == op.scope:
                assert reply.status not in (401, 403), (str(op), scope, reply.body)
            else:
                assert reply.status == 403, (str(op), scope, reply.status)
                assert reply.json()["error"]["requiredScope"] == op.scope
            checked += 1
    assert checked >= 17 * len(ALL_SCOPES)


class TestWritesDisabled:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0", "PUBLIC_API_WRITE_ENABLED": "off"}

    async def test_every_mutating_route_is_503_and_reads_work(self, app: Quart,
                                                              studio: StudioClient) -> None:
        from gateway.state import EXTENSION

        svc = app.extensions[EXTENSION].services["studio"]
        key = await make_key(app, "gated", ALL_SCOPES)
        studio_row = await svc.create_studio("gated", "existing", None)
        source = await svc.create_source("gated", studio_row.id, "cam", "webrtc-input", None, None)
        destination = await svc.create_destination(
            "gated", studio_row.id, {"name": "d", "platform": "custom"}, None)
        ids = {"id": studio_row.id, "sourceId": source.id, "destId": destination.id,
               "sessionId": "none"}
        for op in OPS:
            reply = await _call(studio, op, ids, key)
            if op.gated:
                assert reply.status == 503, str(op)
                assert reply.json()["error"]["code"] == "write_disabled"
            else:
                assert reply.status != 503, str(op)
                if op.method == "GET":
                    assert reply.status == 200, str(op)
        listed = await studio.call("GET", f"/v1/studios/{studio_row.id}/destinations", key=key)
        assert [d["id"] for d in listed.json()["data"]] == [destination.id]
