"""Auth, errors, bad input and the less common track flows, against the in-process app."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiortc import RTCSessionDescription

from gateway.specs import SpecStore
from tests.calls.helpers import APP_SECRET, CallsApi, CallsPeer, publish_whip, pull, wait_for
from tests.media.media_clients import NumberedVideoTrack, Publisher, decode_numbers


async def test_wrong_secret_unknown_app_and_unknown_session(api: CallsApi) -> None:
    reply = await api.call("POST", "/sessions/new", secret="not-the-secret")
    assert reply.status == 401
    assert reply.body["errorCode"] == "unauthorized"
    reply = await api.call("POST", "/sessions/new", headers={"Authorization": "Basic x"})
    assert reply.status == 401
    other = CallsApi(api.client, app_id="no-such-app")
    assert (await other.call("POST", "/sessions/new")).status == 401
    session_id = await api.new_session()
    assert (await api.call("GET", f"/sessions/{session_id}", secret="wrong")).status == 401
    reply = await api.call("GET", "/sessions/0123456789abcdef0123456789abcdef")
    assert reply.status == 404
    assert set(reply.body) == {"errorCode", "errorDescription"}
    bare = CallsApi(api.client, prefix="")
    assert (await bare.call("GET", f"/sessions/{session_id}")).body == {"tracks": []}


async def test_cors_preflight_and_vary(api: CallsApi) -> None:
    origin = "http://127.0.0.1:9999"
    response = await api.client.options(
        f"/v1/apps/{api.app_id}/sessions/new",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    reply = await api.call("POST", "/sessions/new", headers={"Origin": origin})
    assert reply.headers["access-control-allow-origin"] == origin
    assert "origin" in reply.headers["vary"].lower()
    denied = await api.call("POST", "/sessions/new", secret="bad", headers={"Origin": origin})
    assert denied.status == 401 and "origin" in denied.headers["vary"].lower()


CALLS_PATHS = SpecStore().get("calls")["paths"]


@pytest.mark.parametrize("path", sorted(CALLS_PATHS))
@pytest.mark.parametrize("prefix", ["/v1", ""])
async def test_options_advertises_exactly_the_paths_methods(api: CallsApi, path: str,
                                                            prefix: str) -> None:
    """`GET .../sessions/{sessionId}` must not match `sessions/new` (it did: OPTIONS on
    `sessions/new` advertised GET, found by schemathesis' allow_header_conformance)."""
    concrete = prefix + re.sub(r"\{(\w+)\}", lambda m: {"appId": api.app_id}.get(
        m.group(1), "0123456789abcdef0123456789abcdef"), path)
    response = await api.client.options(concrete)
    allowed = {m.strip().lower() for m in response.headers.get("Allow", "").split(",")}
    documented = set(CALLS_PATHS[path]) & {"get", "put", "post", "patch", "delete"}
    assert allowed - {"head", "options", ""} == documented, (concrete, allowed)


async def test_new_session_with_offer_answers(api: CallsApi) -> None:
    peer = CallsPeer()
    peer.pc.createDataChannel("server-events")
    offer = await peer.offer()
    reply = await api.call("POST", "/sessions/new?thirdparty=false&correlationId=c-1",
                           {"sessionDescription": {"type": "offer", "sdp": offer}})
    assert reply.status == 201
    assert reply.body["sessionDescription"]["type"] == "answer"
    await peer.accept(reply.body["sessionDescription"])
    await peer.connected()
    await peer.close()


async def test_bad_input_is_reported_and_the_session_keeps_working(api: CallsApi) -> None:
    peer = CallsPeer()
    names = peer.add_camera()
    peer.session_id = sid = await api.new_session()
    path = f"/sessions/{sid}/tracks/new"

    reply = await api.call("POST", path, {"sessionDescription": {"type": "offer",
                                                                 "sdp": "v=0\r\nnonsense"},
                                          "tracks": []})
    assert reply.status == 400 and reply.body["errorCode"] == "invalid_session_description"
    assert (await api.call("POST", path, raw=b"{not json")).status == 400
    assert (await api.call("POST", path, {"tracks": "x"})).status == 400
    too_many = [{"location": "local", "trackName": f"t{i}", "kind": "audio"} for i in range(65)]
    reply = await api.call("POST", path, {"tracks": too_many})
    assert reply.status == 400 and reply.body["errorCode"] == "too_many_tracks"
    reply = await api.call("POST", path, {"tracks": [
        {"location": "remote", "sessionId": sid, "trackName": "nobody-has-this"},
        {"location": "remote", "sessionId": "feedfacefeedfacefeedfacefeedface",
         "trackName": "x"},
    ]})
    assert reply.status == 200
    assert [t["errorCode"] for t in reply.body["tracks"]] == [
        "track_not_found", "session_not_found"]
    assert reply.body["requiresImmediateRenegotiation"] is False
    reply = await api.call("PUT", f"/sessions/{sid}/tracks/close", {"tracks": [{"mid": "42"}],
                                                                    "force": True})
    assert reply.status == 200 and reply.body["tracks"][0]["errorCode"] == "unknown_mid"
    reply = await api.call("PUT", f"/sessions/{sid}/renegotiate",
                           {"sessionDescription": {"type": "answer", "sdp": "garbage"}})
    assert reply.status == 400

    # an unknown mid next to a good one: the good one is pushed, the other reported
    offer = await peer.offer()
    reply = await api.call("POST", path, {
        "sessionDescription": {"type": "offer", "sdp": offer},
        "tracks": [
            {"location": "local", "mid": "99", "trackName": "ghost"},
            {"location": "local", "mid": peer.mid_of(names["video"]),
             "trackName": names["video"]},
        ],
    })
    assert reply.status == 200, reply.body
    ghost, video = reply.body["tracks"]
    assert ghost["errorCode"] == "unknown_mid" and "errorCode" not in video
    await peer.accept(reply.body["sessionDescription"])
    await peer.connected()
    viewer = CallsPeer()
    viewer.session_id = await api.new_session()
    mids = await pull(api, viewer, sid, [names["video"]])
    capture = viewer.captures[mids[names["video"]]]
    await wait_for(lambda: len(capture.frames) >= 5, 10)
    await peer.close()
    await viewer.close()


async def test_sfu_offer_for_local_track_autodiscover_and_force_close(api: CallsApi) -> None:
    # push without an offer: the SFU offers a receive transceiver (kind required)
    peer = CallsPeer()
    peer.session_id = sid = await api.new_session()
    reply = await api.call("POST", f"/sessions/{sid}/tracks/new", {"tracks": [
        {"location": "local", "trackName": "cam"},
        {"location": "local", "trackName": "cam", "kind": "video"},
    ]})
    assert reply.status == 200
    missing_kind, cam = reply.body["tracks"]
    assert missing_kind["errorCode"] == "invalid_track"
    assert reply.body["requiresImmediateRenegotiation"] is True
    await peer.pc.setRemoteDescription(_description(reply.body["sessionDescription"]))
    transceiver = next(t for t in peer.pc.getTransceivers() if t.mid == cam["mid"])
    transceiver.direction = "sendonly"
    transceiver.sender.replaceTrack(NumberedVideoTrack())
    await peer.pc.setLocalDescription(await peer.pc.createAnswer())
    state = await api.state(sid)
    assert state["local:cam"]["status"] == "waiting"
    reply = await api.call("PUT", f"/sessions/{sid}/renegotiate", {
        "sessionDescription": {"type": "answer", "sdp": peer.pc.localDescription.sdp}})
    assert reply.status == 200 and reply.body == {}
    await peer.connected()

    # autoDiscover names a new track in the next offer
    peer.pc.addTransceiver(NumberedVideoTrack(), direction="sendonly")
    offer = await peer.offer()
    reply = await api.call("POST", f"/sessions/{sid}/tracks/new", {
        "autoDiscover": True, "sessionDescription": {"type": "offer", "sdp": offer}})
    assert reply.status == 200, reply.body
    (found,) = reply.body["tracks"]
    assert found["location"] == "local" and found["trackName"] and "errorCode" not in found
    await peer.accept(reply.body["sessionDescription"])

    viewer = CallsPeer()
    viewer.session_id = await api.new_session()
    mids = await pull(api, viewer, sid, ["cam", found["trackName"]])
    await wait_for(lambda: all(len(viewer.captures[m].frames) >= 5 for m in mids.values()), 10)
    assert {t["status"] for t in (await api.state(sid)).values()} == {"active"}

    # force close: no renegotiation, the puller sees the track inactive
    reply = await api.call("PUT", f"/sessions/{sid}/tracks/close",
                           {"tracks": [{"mid": cam["mid"]}], "force": True})
    assert reply.status == 200
    assert reply.body["requiresImmediateRenegotiation"] is False
    assert "sessionDescription" not in reply.body
    assert (await api.state(viewer.session_id))["remote:cam"]["status"] == "inactive"

    # the viewer closes its other pulled track without an offer: the SFU offers
    reply = await api.call("PUT", f"/sessions/{viewer.session_id}/tracks/close",
                           {"tracks": [{"mid": mids[found["trackName"]]}]})
    assert reply.status == 200 and reply.body["requiresImmediateRenegotiation"] is True
    answer = await viewer.answer(reply.body["sessionDescription"])
    reply = await api.call("PUT", f"/sessions/{viewer.session_id}/renegotiate",
                           {"sessionDescription": {"type": "answer", "sdp": answer}})
    assert reply.status == 200
    await peer.close()
    await viewer.close()


async def test_pull_a_whip_room_track(api: CallsApi) -> None:
    """A browser-style Calls client watches a WHIP publisher: sessionId `live:<room>`."""
    publisher = Publisher("video/VP8")
    assert await publish_whip(api.client, "lobby", publisher) == 201
    video_mid = next(t.mid for t in publisher.pc.getTransceivers() if t.kind == "video")

    viewer = CallsPeer()
    viewer.session_id = await api.new_session()
    mids = await pull(api, viewer, "live:lobby", [video_mid, "audio"])
    await wait_for(lambda: all(len(viewer.captures[m].frames) >= 5 for m in mids.values()), 10)
    assert viewer.captures[mids[video_mid]].kind == "video"
    numbers = decode_numbers(viewer.captures[mids[video_mid]].frames[:5])
    assert None not in numbers
    state = await api.state(viewer.session_id)
    assert {t["status"] for t in state.values()} == {"active"}
    reply = await api.call("POST", f"/sessions/{viewer.session_id}/tracks/new", {"tracks": [
        {"location": "remote", "sessionId": "live:empty-room", "trackName": "video"},
        {"location": "remote", "sessionId": "live:lobby", "trackName": "no-such-mid"}]})
    assert [t["errorCode"] for t in reply.body["tracks"]] == [
        "session_not_found", "track_not_found"]
    await publisher.close()
    for _ in range(100):  # the WHIP publisher left: the pulled tracks go inactive
        state = await api.state(viewer.session_id)
        if {t["status"] for t in state.values()} == {"inactive"}:
            break
        await asyncio.sleep(0.1)
    assert {t["status"] for t in state.values()} == {"inactive"}
    await viewer.close()


async def test_data_channels_are_relayed(api: CallsApi) -> None:
    a, b = CallsPeer(), CallsPeer()
    for peer in (a, b):
        peer.pc.createDataChannel("bootstrap")
        offer = await peer.offer()
        reply = await api.call("POST", "/sessions/new",
                               {"sessionDescription": {"type": "offer", "sdp": offer}})
        peer.session_id = reply.body["sessionId"]
        await peer.accept(reply.body["sessionDescription"])
        await peer.connected()
    reply = await api.call("POST", f"/sessions/{a.session_id}/datachannels/new", {
        "dataChannels": [{"location": "local", "dataChannelName": "chat"}]})
    assert reply.status == 200 and reply.body["requiresImmediateRenegotiation"] is False
    local_id = reply.body["dataChannels"][0]["id"]
    reply = await api.call("POST", f"/sessions/{b.session_id}/datachannels/new", {
        "dataChannels": [
            {"location": "remote", "sessionId": a.session_id, "dataChannelName": "chat"},
            {"location": "remote", "sessionId": a.session_id, "dataChannelName": "nope"},
        ]})
    assert reply.status == 200
    remote, missing = reply.body["dataChannels"]
    assert missing["errorCode"] == "data_channel_not_found"
    sender = a.pc.createDataChannel("chat", negotiated=True, id=local_id)
    receiver = b.pc.createDataChannel("chat", negotiated=True, id=remote["id"])
    received: list[str | bytes] = []
    receiver.on("message", received.append)
    await wait_for(lambda: sender.readyState == "open" and receiver.readyState == "open", 5)
    await asyncio.sleep(0.2)
    sender.send("hello")
    sender.send(b"\x00\x01")
    await wait_for(lambda: len(received) == 2, 5)
    assert received == ["hello", b"\x00\x01"]
    await a.close()
    await b.close()


async def test_pulling_waits_for_the_publisher_to_connect(api: CallsApi) -> None:
    a = CallsPeer()
    names = a.add_camera()
    a.session_id = await api.new_session()
    offer = await a.offer()
    reply = await api.call("POST", f"/sessions/{a.session_id}/tracks/new", {
        "sessionDescription": {"type": "offer", "sdp": offer},
        "tracks": [{"location": "local", "mid": a.mid_of(names["video"]),
                    "trackName": names["video"]}]})
    assert reply.status == 200
    # A never applies the answer, so its PeerConnection cannot connect
    b = CallsPeer()
    b.session_id = await api.new_session()
    started = asyncio.get_running_loop().time()
    reply = await api.call("POST", f"/sessions/{b.session_id}/tracks/new", {"tracks": [
        {"location": "remote", "sessionId": a.session_id, "trackName": names["video"]}]})
    waited = asyncio.get_running_loop().time() - started
    assert reply.body["tracks"][0]["errorCode"] == "session_not_connected"
    assert 4.5 < waited < 15
    await a.close()
    await b.close()


async def test_rate_limit_is_per_session(api: CallsApi) -> None:
    from gateway.calls.service import CALLS_PER_SECOND
    from gateway.ratelimit import TokenBucketLimiter
    from gateway.state import EXTENSION

    service = api.client.app.extensions[EXTENSION].services["calls"]
    # a frozen clock: no refill, so exactly 50 calls fit however slow the machine is
    service.limiter = TokenBucketLimiter(CALLS_PER_SECOND, CALLS_PER_SECOND, clock=lambda: 0.0)
    sid = await api.new_session()
    replies = [await api.call("GET", f"/sessions/{sid}") for _ in range(52)]
    assert [r.status for r in replies] == [200] * 50 + [429] * 2
    assert replies[-1].body["errorCode"] == "rate_limited"
    assert int(replies[-1].headers["retry-after"]) >= 1
    other = await api.new_session()
    assert (await api.call("GET", f"/sessions/{other}")).status == 200


def _description(body: dict[str, str]) -> RTCSessionDescription:
    return RTCSessionDescription(body["sdp"], body["type"])


async def test_secret_is_stored_hashed(app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from gateway.state import EXTENSION

    db = app.extensions[EXTENSION].db
    async with db.session() as session:
        stored = (await session.execute(text("SELECT secret_hash FROM calls_apps"))).scalar()
    assert APP_SECRET not in stored and stored.startswith("pbkdf2_sha256$")
