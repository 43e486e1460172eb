"""Calls sessions created without an offer hold no media peer (part of finding 6 of issue 13).

A soak grew ~240 MB/h from `sessions/new` without an offer: each held a media-core peer for
its 300 s connect timeout. Such a session now holds none until a call negotiates one, stays
usable through the documented flows, and lets go of everything once closed.
"""

from __future__ import annotations

import gc

import psutil
from quart import Quart

from gateway.state import EXTENSION
from tests.calls.helpers import CallsApi, CallsPeer, pull, push_camera, wait_for

SESSIONS = 200
RSS_BUDGET = 1536 * 1024
"""What 200 sessions' bookkeeping may cost (~0.4 MiB measured); 200 peers cost ~4.4 MiB."""


def _usage(process: psutil.Process) -> tuple[int, int]:
    gc.collect()
    return process.memory_info().rss, process.num_fds()


async def test_sessions_without_offer_hold_no_peer(app: Quart, api: CallsApi) -> None:
    state = app.extensions[EXTENSION]
    service = state.services["calls"]
    process = psutil.Process()
    for _ in range(20):  # warm up the code paths, the database and the allocator
        await api.new_session()
    peers_before = len(state.media.peers)
    rss_before, fds_before = _usage(process)

    ids = [await api.new_session() for _ in range(SESSIONS)]

    rss_after, fds_after = _usage(process)
    print(f"{SESSIONS} sessions: peers {peers_before} -> {len(state.media.peers)}, "
          f"RSS +{(rss_after - rss_before) / 1024:.0f} KiB, fds {fds_before} -> {fds_after}")
    assert peers_before == 0
    assert len(state.media.peers) == 0
    assert fds_after - fds_before <= 2
    assert rss_after - rss_before < RSS_BUDGET

    # one of them pushes a camera with an offer, another pulls it: media flows end to end
    publisher, names = await push_camera(api, ids[7])
    assert set(state.media.peers) == {ids[7]}
    viewer = CallsPeer()
    viewer.session_id = ids[8]
    mids = await pull(api, viewer, ids[7], list(names.values()))
    await wait_for(lambda: all(len(viewer.captures[m].frames) >= 5 for m in mids.values()), 10)
    assert {t["status"] for t in (await api.state(ids[8])).values()} == {"active"}
    assert len(state.media.peers) == 2

    # closed sessions let go of their peer and everything hung off it
    await publisher.close()
    await viewer.close()
    await wait_for(lambda: service.sessions[ids[7]].closed and service.sessions[ids[8]].closed,
                   15)
    await wait_for(lambda: not state.media.peers, 5)
    for session_id in (ids[7], ids[8]):
        session = service.sessions[session_id]
        assert session.peer is None and not session.local and not session.remote
        assert {t["status"] for t in (await api.state(session_id)).values()} == {"inactive"}
    assert state.media.list_tracks("calls/") == []


async def test_a_call_that_negotiates_nothing_creates_no_peer(app: Quart, api: CallsApi) -> None:
    """Failed or empty calls on a peerless session leave it without a peer, and usable."""
    state = app.extensions[EXTENSION]
    session_id = await api.new_session()
    calls = [
        ("POST", "/tracks/new", {"tracks": []}),
        ("POST", "/tracks/new", {"tracks": [
            {"location": "remote", "sessionId": "0" * 32, "trackName": "x"},
            {"location": "local", "trackName": "no-kind"}]}),
        ("PUT", "/tracks/close", {"tracks": [{"mid": "0"}]}),
        ("PUT", "/tracks/update", {"tracks": [{"location": "remote", "mid": "0"}]}),
        ("POST", "/datachannels/new", {"dataChannels": [
            {"location": "remote", "sessionId": "0" * 32, "dataChannelName": "chat"}]}),
        ("PUT", "/renegotiate", {"sessionDescription": {"type": "answer", "sdp": "v=0\r\n"}}),
    ]
    for method, path, body in calls:
        reply = await api.call(method, f"/sessions/{session_id}{path}", body)
        assert reply.status in (200, 400), (path, reply.body)
        assert session_id not in state.media.peers, path
    assert (await api.state(session_id)) == {}
    publisher, _names = await push_camera(api, session_id)  # still usable
    await publisher.close()


async def test_data_channels_first_on_peerless_sessions(app: Quart, api: CallsApi) -> None:
    """The first call negotiates the peer: data channels on two sessions made without offers."""
    state = app.extensions[EXTENSION]
    channels = []
    for location, extra in (("local", {}), ("remote", {})):
        peer = CallsPeer()
        peer.session_id = await api.new_session()
        assert peer.session_id not in state.media.peers
        if location == "remote":
            extra = {"sessionId": channels[0][0].session_id}
        reply = await api.call("POST", f"/sessions/{peer.session_id}/datachannels/new", {
            "dataChannels": [{"location": location, "dataChannelName": "chat", **extra}]})
        assert reply.status == 200, reply.body
        assert reply.body["requiresImmediateRenegotiation"] is True
        channel = peer.pc.createDataChannel("chat", negotiated=True,
                                            id=reply.body["dataChannels"][0]["id"])
        answer = await peer.answer(reply.body["sessionDescription"])
        reply = await api.call("PUT", f"/sessions/{peer.session_id}/renegotiate",
                               {"sessionDescription": {"type": "answer", "sdp": answer}})
        assert reply.status == 200 and "errorCode" not in reply.body
        await wait_for(lambda c=channel: c.readyState == "open", 10)
        channels.append((peer, channel))
    got: list[object] = []
    channels[1][1].on("message", got.append)
    channels[0][1].send("hello")
    await wait_for(lambda: got == ["hello"], 5)
    for peer, _ in channels:
        await peer.close()
