"""Two aiortc clients through the Calls API: A pushes audio + video, B pulls them."""

from __future__ import annotations

from tests.calls.helpers import CallsApi, CallsPeer, pull, push_camera, wait_for
from tests.media.media_clients import decode_numbers


async def test_push_pull_close(api: CallsApi) -> None:
    a, names = await push_camera(api)
    b = CallsPeer()
    b.session_id = await api.new_session()
    mids = await pull(api, b, a.session_id, [names["audio"], names["video"]])
    video = b.captures[mids[names["video"]]]
    audio = b.captures[mids[names["audio"]]]
    assert video.kind == "video" and audio.kind == "audio"
    await wait_for(lambda: len(video.frames) >= 15 and len(audio.frames) >= 15, 15)
    numbers = decode_numbers(video.frames[:15])
    assert None not in numbers and numbers == list(range(numbers[0], numbers[0] + 15))
    assert all(f.mime == "video/VP8" for f in video.frames)

    async def statuses() -> dict[str, str]:
        return {k: t["status"] for k, t in (await api.state(b.session_id)).items()}

    assert await statuses() == {f"remote:{names['audio']}": "active",
                                f"remote:{names['video']}": "active"}
    pushed = await api.state(a.session_id)
    assert {t["status"] for t in pushed.values()} == {"active"}
    assert {t["mid"] for t in pushed.values()} == {a.mid_of(n) for n in names.values()}

    # A closes its video track the way a browser does: stop sending, offer, tracks/close
    video_mid = a.mid_of(names["video"])
    transceiver = next(t for t in a.pc.getTransceivers() if t.mid == video_mid)
    transceiver.direction = "inactive"
    offer = await a.offer()
    reply = await api.call("PUT", f"/sessions/{a.session_id}/tracks/close", {
        "tracks": [{"mid": video_mid}],
        "sessionDescription": {"type": "offer", "sdp": offer},
        "force": False,
    })
    assert reply.status == 200, reply.body
    assert reply.body["tracks"] == [{"mid": video_mid}]
    assert reply.body["requiresImmediateRenegotiation"] is False
    await a.accept(reply.body["sessionDescription"])
    after = await statuses()
    assert after[f"remote:{names['video']}"] == "inactive"
    assert after[f"remote:{names['audio']}"] == "active"
    assert (await api.state(a.session_id))[f"local:{names['video']}"]["status"] == "inactive"
    # the audio keeps flowing to B
    count = len(audio.frames)
    await wait_for(lambda: len(audio.frames) > count + 10, 5)
    await a.close()
    await b.close()
