"""The Calls spec and the Calls API agree on request bodies (part of finding 12 of issue 13).

A body-less `tracks/close` answered 400 while `specs/calls.openapi.yaml` called its body
optional. Every operation's body is now either required by the spec (and a body-less call is
`400 invalid_request`) or optional and accepted without one; no field takes `null`.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.specs import SpecStore
from tests.calls.helpers import APP_ID, CallsApi, CallsPeer
from tests.contract import SpecContract

OPERATIONS = [
    ("POST", "/sessions/new"),
    ("POST", "/sessions/{id}/tracks/new"),
    ("PUT", "/sessions/{id}/renegotiate"),
    ("PUT", "/sessions/{id}/tracks/close"),
    ("PUT", "/sessions/{id}/tracks/update"),
    ("POST", "/sessions/{id}/datachannels/new"),
]

# bodies of the documented shape but for one `null` where the spec says string/boolean/object
NULLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/sessions/new", {"sessionDescription": None}),
    ("POST", "/sessions/{id}/tracks/new", {"tracks": [{"location": "remote", "kind": None}]}),
    ("POST", "/sessions/{id}/tracks/new", {"autoDiscover": None}),
    ("PUT", "/sessions/{id}/renegotiate", {"sessionDescription": {"type": None, "sdp": "v=0"}}),
    ("PUT", "/sessions/{id}/tracks/close", {"sessionDescription": None, "tracks": []}),
    ("PUT", "/sessions/{id}/tracks/close", {"tracks": [{"mid": None}]}),
    ("PUT", "/sessions/{id}/tracks/update", {"tracks": [{"location": "local", "kind": None}]}),
    ("POST", "/sessions/{id}/datachannels/new",
     {"dataChannels": [{"location": "local", "dataChannelName": "x", "sessionId": None}]}),
]


def _spec_requires_body(method: str, path: str) -> bool:
    contract = SpecContract("calls", SpecStore().get("calls"))
    operation = contract.find(method, f"/v1/apps/{APP_ID}" + path.replace("{id}", "x" * 32))
    return bool(operation.spec["requestBody"].get("required", False))


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_a_body_less_call_is_what_the_spec_says(api: CallsApi, method: str,
                                                      path: str) -> None:
    session_id = await api.new_session()
    reply = await api.call(method, path.replace("{id}", session_id))
    if _spec_requires_body(method, path):
        assert reply.status == 400, reply.body
        assert reply.body == {"errorCode": "invalid_request",
                              "errorDescription": "a JSON body is required"}
    else:
        assert reply.status in (200, 201), reply.body


async def test_body_less_tracks_close_is_refused_and_documented(api: CallsApi) -> None:
    """The upstream document leaves the body optional by omission; nothing says Cloudflare
    takes a close without one, so the spec states the strict rule the gateway applies."""
    assert _spec_requires_body("PUT", "/sessions/{id}/tracks/close")
    session_id = await api.new_session()
    reply = await api.call("PUT", f"/sessions/{session_id}/tracks/close")
    assert reply.status == 400 and reply.body["errorCode"] == "invalid_request"


@pytest.mark.parametrize(("method", "path", "body"), NULLS)
async def test_null_is_no_value(api: CallsApi, method: str, path: str,
                                body: dict[str, Any]) -> None:
    session_id = await api.new_session()
    reply = await api.call(method, path.replace("{id}", session_id), body)
    assert reply.status == 400, reply.body
    assert reply.body["errorCode"] == "invalid_request"
    assert "null" in reply.body["errorDescription"]


async def test_an_offer_while_the_sfu_offer_waits_is_a_conflict(api: CallsApi) -> None:
    session_id = await api.new_session()
    reply = await api.call("POST", f"/sessions/{session_id}/tracks/new", {"tracks": [
        {"location": "local", "trackName": "cam", "kind": "video"}]})
    assert reply.status == 200 and reply.body["requiresImmediateRenegotiation"] is True
    client = CallsPeer()
    client.add_camera()
    offer = {"sessionDescription": {"type": "offer", "sdp": await client.offer()}}
    for method, path in (("POST", "tracks/new"), ("PUT", "renegotiate")):
        reply = await api.call(method, f"/sessions/{session_id}/{path}", offer)
        assert reply.status == 409, reply.body
        assert reply.body["errorCode"] == "renegotiation_pending"
    await client.close()


@pytest.mark.parametrize(("query", "status"), [
    ("thirdparty=true", 201), ("thirdparty=FALSE", 201), ("thirdparty=", 400),
    ("thirdparty=yes", 400), ("thirdparty=1", 400),
])
async def test_thirdparty_is_a_boolean(api: CallsApi, query: str, status: int) -> None:
    reply = await api.call("POST", f"/sessions/new?{query}")
    assert reply.status == status, reply.body
