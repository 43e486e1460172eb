"""The pattern of real Calls apps (one PeerConnection per participant that both pushes and
pulls): two participants see each other, then one adds a screen share mid-call."""

from __future__ import annotations

from aiortc import RTCSessionDescription

from tests.calls.helpers import CallsApi, pull, push_camera, wait_for
from tests.media.media_clients import NumberedVideoTrack, decode_numbers, prefer


async def test_two_participants_then_a_screen_share(api: CallsApi) -> None:
    alice, alice_names = await push_camera(api)
    bob, bob_names = await push_camera(api)
    # each pulls the other's camera on the same session it pushes on
    alice_mids = await pull(api, alice, bob.session_id, [bob_names["audio"], bob_names["video"]])
    bob_mids = await pull(api, bob, alice.session_id,
                          [alice_names["audio"], alice_names["video"]])
    alice_sees = alice.captures[alice_mids[bob_names["video"]]]
    bob_sees = bob.captures[bob_mids[alice_names["video"]]]
    await wait_for(lambda: len(alice_sees.frames) >= 10 and len(bob_sees.frames) >= 10, 15)
    assert None not in decode_numbers(alice_sees.frames[:10])

    # alice shares her screen: a new transceiver, her offer, tracks/new with its mid
    screen = NumberedVideoTrack()
    prefer(alice.pc.addTransceiver(screen, direction="sendonly"), "video/VP8")
    offer = await alice.offer()
    reply = await api.call("POST", f"/sessions/{alice.session_id}/tracks/new", {
        "sessionDescription": {"type": "offer", "sdp": offer},
        "tracks": [{"location": "local", "mid": alice.mid_of(screen.id), "trackName": "screen"}],
    })
    assert reply.status == 200, reply.body
    assert "errorCode" not in reply.body["tracks"][0]
    await alice.pc.setRemoteDescription(RTCSessionDescription(**reply.body["sessionDescription"]))
    bob_screen = await pull(api, bob, alice.session_id, ["screen"])
    screen_capture = bob.captures[bob_screen["screen"]]
    await wait_for(lambda: len(screen_capture.frames) >= 10, 15)
    # what was already flowing keeps flowing
    before = len(alice_sees.frames)
    await wait_for(lambda: len(alice_sees.frames) > before + 10, 10)
    states = {t["trackName"]: t["status"] for t in
              (await api.call("GET", f"/sessions/{bob.session_id}")).body["tracks"]}
    assert states["screen"] == "active" and states[alice_names["video"]] == "active"
    assert states[bob_names["video"]] == "active"
    await alice.close()
    await bob.close()
