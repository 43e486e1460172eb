"""Track status over time, session teardown, bidirectional transceivers, other replicas."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCSessionDescription
from quart import Quart

from gateway.calls import service as calls_service
from gateway.calls.models import CallsSession
from gateway.state import EXTENSION
from tests.calls.helpers import CallsApi, CallsPeer, pull, push_camera, wait_for
from tests.media.media_clients import NumberedVideoTrack


async def test_track_goes_inactive_without_media_and_session_closes(
    api: CallsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_service, "INACTIVE_AFTER", 2.0)  # upstream: 30 s
    a, names = await push_camera(api)
    key = f"local:{names['video']}"
    assert (await api.state(a.session_id))[key]["status"] in ("active", "waiting")
    sender = next(t.sender for t in a.pc.getTransceivers()
                  if t.sender.track is not None and t.sender.track.id == names["video"])
    sender.replaceTrack(None)  # the browser stops sending but keeps the connection
    statuses: list[str] = []

    async def poll() -> str:
        status = (await api.state(a.session_id))[key]["status"]
        statuses.append(status)
        return status

    for _ in range(100):
        if await poll() == "inactive":
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == "inactive"
    assert (await api.state(a.session_id))[f"local:{names['audio']}"]["status"] == "active"

    # the client goes away: the session is closed, in memory and in the database
    await a.close()
    app = api.client.app
    service = app.extensions[EXTENSION].services["calls"]
    await wait_for(lambda: service.sessions[a.session_id].closed, 10)
    state = await api.state(a.session_id)
    assert {t["status"] for t in state.values()} == {"inactive"}
    reply = await api.call("POST", f"/sessions/{a.session_id}/tracks/new", {"tracks": []})
    assert reply.status == 400 and reply.body["errorCode"] == "session_closed"
    db = app.extensions[EXTENSION].db
    async with db.session() as session:
        row = await session.get(CallsSession, a.session_id)
        assert row is not None and row.closed and row.closed_at is not None


async def test_pull_into_a_bidirectional_transceiver(api: CallsApi) -> None:
    a, names = await push_camera(api)
    b = CallsPeer()
    b.session_id = await api.new_session()
    reply = await api.call("POST", f"/sessions/{b.session_id}/tracks/new", {"tracks": [
        {"location": "local", "trackName": "mic", "kind": "video",
         "bidirectionalMediaStream": True}]})
    assert reply.status == 200 and reply.body["requiresImmediateRenegotiation"]
    (mic,) = reply.body["tracks"]
    await b.pc.setRemoteDescription(RTCSessionDescription(**reply.body["sessionDescription"]))
    transceiver = next(t for t in b.pc.getTransceivers() if t.mid == mic["mid"])
    assert transceiver.direction == "recvonly"  # sendrecv offered; aiortc answers per track
    transceiver.direction = "sendrecv"
    transceiver.sender.replaceTrack(NumberedVideoTrack())
    b.hook_receivers()
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    reply = await api.call("PUT", f"/sessions/{b.session_id}/renegotiate", {
        "sessionDescription": {"type": "answer", "sdp": b.pc.localDescription.sdp}})
    assert reply.status == 200
    await b.connected()
    reply = await api.call("POST", f"/sessions/{b.session_id}/tracks/new", {"tracks": [
        {"location": "remote", "sessionId": a.session_id, "trackName": names["video"],
         "mid": "#mic"},
        {"location": "remote", "sessionId": a.session_id, "trackName": names["audio"],
         "mid": "#nothing"},
    ]})
    assert reply.status == 200
    pulled, unknown = reply.body["tracks"]
    assert unknown["errorCode"] == "unknown_mid"
    assert pulled["mid"] == "#mic" and reply.body["requiresImmediateRenegotiation"] is False
    capture = b.captures[mic["mid"]]
    await wait_for(lambda: len(capture.frames) >= 5, 10)
    # and B's own pushed track on that transceiver is pullable by a third session
    c = CallsPeer()
    c.session_id = await api.new_session()
    mids = await pull(api, c, b.session_id, ["mic"])
    await wait_for(lambda: len(c.captures[mids["mic"]].frames) >= 5, 10)
    for peer in (a, b, c):
        await peer.close()


async def test_session_of_another_replica_is_named(api: CallsApi, app: Quart) -> None:
    from datetime import UTC, datetime

    state = app.extensions[EXTENSION]
    async with state.db.session() as session:
        session.add(CallsSession(id="elsewhere0000", app_id=api.app_id, closed=False,
                                 created_at=datetime.now(UTC), instance_id="other-replica",
                                 thirdparty=False))
    reply = await api.call("GET", "/sessions/elsewhere0000")
    assert reply.status == 409 and reply.body["errorCode"] == "session_on_other_instance"
