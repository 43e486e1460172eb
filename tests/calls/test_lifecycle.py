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
from tests.rtc import local_peer_connection


async def test_track_goes_inactive_without_media_and_session_closes(
    api: CallsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_service, "INACTIVE_AFTER", 2.0)  # upstream: 30 s
    a, names = await push_camera(api)
    key = f"local:{names['video']}"
    for _ in range(100):  # media flows first (a track that never started stays waiting)
        status = (await api.state(a.session_id))[key]["status"]
        if status == "active":
            break
        assert status == "waiting"
        await asyncio.sleep(0.1)
    assert status == "active"
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
                                 created_at=datetime.now(UTC), replica_id="other-replica",
                                 thirdparty=False))
    reply = await api.call("GET", "/sessions/elsewhere0000")
    assert reply.status == 409 and reply.body["errorCode"] == "session_on_other_instance"


async def test_update_points_a_transceiver_at_another_track(api: CallsApi) -> None:
    a, a_names = await push_camera(api)
    b, b_names = await push_camera(api)
    viewer = CallsPeer()
    viewer.session_id = await api.new_session()
    mids = await pull(api, viewer, a.session_id, [a_names["video"]])
    mid = mids[a_names["video"]]
    capture = viewer.captures[mid]
    await wait_for(lambda: len(capture.frames) >= 3, 10)
    path = f"/sessions/{viewer.session_id}/tracks/update"
    reply = await api.call("PUT", path, {"tracks": [
        {"location": "remote", "mid": mid, "sessionId": b.session_id,
         "trackName": b_names["video"],
         "simulcast": {"preferredRid": "h", "priorityOrdering": "asciibetical"}},
        {"location": "remote", "mid": "77", "sessionId": b.session_id,
         "trackName": b_names["audio"]},
        {"location": "remote", "mid": mid, "sessionId": b.session_id,
         "trackName": b_names["audio"]},
    ]})
    assert reply.status == 200, reply.body
    moved, unknown, wrong_kind = reply.body["tracks"]
    assert moved["sessionId"] == b.session_id and moved["mid"] == mid
    assert moved["simulcast"]["preferredRid"] == "h"
    assert unknown["errorCode"] == "unknown_mid"
    assert wrong_kind["errorCode"] == "invalid_track"
    assert reply.body["requiresImmediateRenegotiation"] is False
    state = await api.state(viewer.session_id)
    assert state[f"remote:{a_names['video']}"]["status"] == "inactive"
    assert state[f"remote:{b_names['video']}"]["mid"] == mid
    await a.close()  # what still arrives comes from B
    await wait_for(lambda: api.client.app.extensions[EXTENSION].media.get_peer(a.session_id)
                   is None, 10)
    count = len(capture.frames)
    await wait_for(lambda: len(capture.frames) > count + 5, 10)
    assert (await api.state(viewer.session_id))[f"remote:{b_names['video']}"]["status"] == (
        "active")
    for peer in (b, viewer):
        await peer.close()


async def test_data_channels_without_sctp_get_an_sfu_offer(api: CallsApi) -> None:
    a, _ = await push_camera(api)  # media only: no SCTP association yet
    reply = await api.call("POST", f"/sessions/{a.session_id}/datachannels/new", {
        "dataChannels": [{"location": "local", "dataChannelName": "events"},
                         {"location": "local", "dataChannelName": "events"}]})
    assert reply.status == 200
    channel, duplicate = reply.body["dataChannels"]
    assert duplicate["errorCode"] == "data_channel_exists"
    assert reply.body["requiresImmediateRenegotiation"] is True
    assert "m=application" in reply.body["sessionDescription"]["sdp"]
    events = a.pc.createDataChannel("events", negotiated=True, id=channel["id"])
    answer = await a.answer(reply.body["sessionDescription"])
    reply = await api.call("PUT", f"/sessions/{a.session_id}/renegotiate",
                           {"sessionDescription": {"type": "answer", "sdp": answer}})
    assert reply.status == 200
    await wait_for(lambda: events.readyState == "open", 10)

    b = CallsPeer()
    b.pc.createDataChannel("bootstrap")
    reply = await api.call("POST", "/sessions/new", {
        "sessionDescription": {"type": "offer", "sdp": await b.offer()}})
    b.session_id = reply.body["sessionId"]
    await b.accept(reply.body["sessionDescription"])
    reply = await api.call("POST", f"/sessions/{b.session_id}/datachannels/new", {
        "dataChannels": [{"location": "remote", "sessionId": a.session_id,
                          "dataChannelName": "events"}]})
    subscribed = b.pc.createDataChannel("events", negotiated=True,
                                        id=reply.body["dataChannels"][0]["id"])
    got: list[object] = []
    subscribed.on("message", got.append)
    await wait_for(lambda: subscribed.readyState == "open", 10)
    events.send("ping")
    await wait_for(lambda: got == ["ping"], 5)
    await a.close()
    await b.close()


async def test_session_created_without_offer_outlives_the_connect_timeout(
    api: CallsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It holds no PeerConnection until a call negotiates one, so the core's connect timeout
    does not apply to it until then; one that never negotiates closes after a while."""
    app = api.client.app
    state = app.extensions[EXTENSION]
    monkeypatch.setattr(state.media.config, "connect_timeout", 0.3)  # upstream-like: 30 s
    monkeypatch.setattr(calls_service, "PEERLESS_SESSION_TTL", 1.5)
    service = state.services["calls"]
    later = await api.new_session()  # negotiates later: tracks/new, renegotiate
    idle = await api.new_session()  # never negotiates
    client = local_peer_connection()
    client.addTransceiver("audio", direction="sendonly")
    await client.setLocalDescription(await client.createOffer())
    offered = await api.new_session(client.localDescription.sdp)
    await client.close()  # the answer is never applied: this one cannot connect
    await wait_for(lambda: service.sessions[offered].closed, 2)
    assert not service.sessions[later].closed
    assert later not in state.media.peers and idle not in state.media.peers
    reply = await api.call("POST", f"/sessions/{later}/tracks/new", {"tracks": [
        {"location": "local", "trackName": "cam", "kind": "video"}]})
    assert reply.status == 200 and reply.body["requiresImmediateRenegotiation"]
    assert later in state.media.peers
    await wait_for(lambda: service.sessions[later].closed, 4)  # never connected either
    reply = await api.call("POST", f"/sessions/{later}/tracks/new", {"tracks": []})
    assert reply.status == 400 and reply.body["errorCode"] == "session_closed"
    assert (await api.state(later))["local:cam"]["status"] == "inactive"
    await wait_for(lambda: service.sessions[idle].closed, 4)
    reply = await api.call("POST", f"/sessions/{idle}/tracks/new", {"tracks": []})
    assert reply.status == 400 and reply.body["errorCode"] == "session_closed"
    async with state.db.session() as db:
        row = await db.get(CallsSession, idle)
        assert row is not None and row.closed
