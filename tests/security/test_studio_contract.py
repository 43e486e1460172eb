"""Issue 13, finding 12 (Studio part): what the server refuses, its spec says it refuses.

Fuzzing found Studio rejecting empty strings and arbitrary cursors that
specs/studio.openapi.yaml allowed, and `OPTIONS /v1/connections/providers` advertising
DELETE. The validation stays strict; the spec documents it (minLength, a whitespace-only
pattern, the cursor's shape) and OPTIONS lists only the path's own methods.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from quart import Quart

from gateway.paths import SPECS_DIR
from gateway.studio import apikeys
from tests.studio.conftest import StudioClient, make_key, settings, studio  # noqa: F401

SPEC: dict[str, Any] = yaml.safe_load((SPECS_DIR / "studio.openapi.yaml").read_text())
METHODS = {"get", "put", "post", "patch", "delete"}
SAMPLE_IDS = {"id": "std_" + "0" * 26, "sourceId": "src_" + "0" * 26,
              "destId": "dst_" + "0" * 26, "sessionId": "abc", "connectionId": "con_" + "0" * 26,
              "assetId": "med_" + "0" * 26, "platform": "testtv", "webhookId": "whk_" + "0" * 26}


@pytest.fixture
def studio_env() -> dict[str, str]:
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}


def _schema(name: str) -> dict[str, Any]:
    return SPEC["components"]["schemas"][name]  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
async def test_options_advertises_exactly_the_paths_methods(studio: StudioClient,  # noqa: F811
                                                            path: str) -> None:
    concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_IDS[m.group(1)], path)
    reply = await studio.call("OPTIONS", concrete, check=False)
    allowed = {m.strip().lower() for m in reply.headers.get("Allow", "").split(",") if m.strip()}
    documented = set(SPEC["paths"][path]) & METHODS
    assert allowed - {"head", "options"} == documented, (path, allowed)


SOURCE = {"name": "n", "type": "webcam"}
DESTINATION = {"name": "n", "platform": "p"}
UPLOAD = {"filename": "f", "contentType": "video/mp4", "byteSize": 1}
CONNECTION = {"connectionType": "manual", "platform": "p", "displayName": "d",
              "rtmpUrl": "rtmp://127.0.0.1/live", "streamKey": "k"}
# (schema, its string fields, method, path template, a valid body each field is put into)
STRING_FIELDS: list[tuple[str, tuple[str, ...], str, str, dict[str, Any]]] = [
    ("CreateStudioRequest", ("name",), "POST", "/v1/studios", {"name": "n"}),
    ("UpdateStudioRequest", ("name",), "PATCH", "/v1/studios/{std}", {}),
    ("CreateSourceRequest", ("name", "type", "url"), "POST", "/v1/studios/{std}/sources", SOURCE),
    ("UpdateSourceRequest", ("name", "url"), "PATCH", "/v1/studios/{std}/sources/{src}", {}),
    ("CreateDestinationRequest", ("name", "platform", "rtmpUrl", "connectionId"), "POST",
     "/v1/studios/{std}/destinations", DESTINATION),
    ("UpdateDestinationRequest", ("name", "platform", "rtmpUrl"), "PATCH",
     "/v1/studios/{std}/destinations/{dst}", {}),
    ("CreateMediaUploadRequest", ("filename", "contentType", "folder"), "POST", "/v1/media",
     UPLOAD),
    ("CreateManualConnectionRequest", ("platform", "displayName", "rtmpUrl"), "POST",
     "/v1/connections", CONNECTION),
]


async def _world(studio: StudioClient, key: str) -> dict[str, str]:  # noqa: F811
    sid = (await studio.call("POST", "/v1/studios", key=key, json_body={"name": "s"})).json()
    src = (await studio.call("POST", f"/v1/studios/{sid['id']}/sources", key=key,
                             json_body={"name": "c", "type": "rtmp",
                                        "url": "rtmp://127.0.0.1/live/x"})).json()
    dst = (await studio.call("POST", f"/v1/studios/{sid['id']}/destinations", key=key,
                             json_body={"name": "d", "platform": "p",
                                        "rtmpUrl": "rtmp://127.0.0.1/live"})).json()
    return {"std": sid["id"], "src": src["id"], "dst": dst["id"]}


@pytest.mark.parametrize("value", ["", "   "])
async def test_refused_empty_strings_are_refused_by_the_spec(app: Quart,
                                                             studio: StudioClient,  # noqa: F811
                                                             value: str) -> None:
    key = await make_key(app, "alice", apikeys.ALL_SCOPES)
    ids = await _world(studio, key)
    for schema, fields, method, template, body in STRING_FIELDS:
        for field in fields:
            reply = await studio.call(method, template.format(**ids), key=key,
                                      json_body={**body, field: value})
            assert reply.status == 400, (schema, field, value, reply.body)
            spec = _schema(schema)["properties"][field]
            allowed_by_spec = len(value) >= spec.get("minLength", 0) and (
                "pattern" not in spec or re.search(spec["pattern"], value) is not None)
            assert not allowed_by_spec, (schema, field, repr(value), spec)


async def test_the_cursor_shape_is_specified_and_enforced(app: Quart,
                                                         studio: StudioClient) -> None:  # noqa: F811
    key = await make_key(app, "alice", apikeys.ALL_SCOPES)
    spec = SPEC["components"]["parameters"]["Cursor"]["schema"]
    assert "pattern" in spec
    for _ in range(3):
        await studio.call("POST", "/v1/studios", key=key, json_body={"name": "s"})
    first = (await studio.call("GET", "/v1/studios?limit=1", key=key)).json()
    assert re.search(spec["pattern"], first["nextCursor"])
    for bad in ("%C3%9E%C2%93", "garbage!", "a.b.c", "..."):
        reply = await studio.call("GET", f"/v1/studios?cursor={bad}", key=key)
        assert reply.status == 400
        assert re.search(spec["pattern"], unquote(bad)) is None, bad
    assert "400" in (SPEC["paths"]["/v1/studios"]["get"]["responses"])
