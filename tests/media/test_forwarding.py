"""End-to-end forwarding over loopback with real aiortc peers: publisher -> MediaCore -> viewers.

Viewers capture encoded frames through media.hook, so nothing in this process decodes video
while the session runs; the captured frames are decoded afterwards with plain PyAV to read the
frame numbers drawn by the publisher.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiortc import RTCSessionDescription
from media_clients import Captured, Publisher, Subscriber, decode_numbers, wait_for

from media import MediaConfig, MediaCore, hook
from media.forward import Tap

pytestmark = pytest.mark.usefixtures("loopback_ice")


def assert_contiguous_run(received: list[Captured], reference: list[Captured]) -> None:
    """`received` is a run of consecutive `reference` frames: same bytes, same RTP spacing."""
    assert received, "nothing received"
    digests = [f.digest for f in reference]
    start = digests.index(received[0].digest)
    overlap = min(len(received), len(reference) - start)
    assert overlap >= len(received) - 2  # the reference tap may stop a frame or two earlier
    for i in range(overlap):
        assert received[i].digest == digests[start + i], f"frame {i} differs"
    for i in range(1, overlap):
        sent = reference[start + i].timestamp - reference[start + i - 1].timestamp
        got = received[i].timestamp - received[i - 1].timestamp
        assert got == sent, "RTP timing not preserved"


async def collect(tap: Tap, into: list[Captured]) -> None:
    async for frame in tap:
        into.append(Captured(frame.data, frame.timestamp, frame.codec, time.monotonic()))


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_forward_to_three_viewers(core: MediaCore, codec: str) -> None:
    with hook.count_decodes() as decodes:
        publisher = Publisher(codec)
        await publisher.publish(await core.create_peer(), "live/room")
        infos = {t.kind: t for t in core.list_tracks("live/room/")}
        assert set(infos) == {"audio", "video"}
        assert infos["video"].codec == codec
        assert infos["audio"].codec == "audio/opus"
        await wait_for(lambda: all(core.track_started(t.track_id) for t in infos.values()))

        # reference: what the core assembled from the publisher, via taps
        reference: dict[str, list[Captured]] = {"audio": [], "video": []}
        taps = {kind: core.tap(info.track_id) for kind, info in infos.items()}
        collectors = [asyncio.create_task(collect(taps[k], reference[k])) for k in taps]

        viewers = [Subscriber() for _ in range(3)]
        for viewer in viewers:
            await viewer.play(
                await core.create_peer(), [infos["audio"].track_id, infos["video"].track_id]
            )
        await wait_for(lambda: all(len(v.capture("video").frames) >= 45 for v in viewers), 15)

        for viewer in viewers:
            await viewer.close()
        for tap in taps.values():
            tap.close()
        await asyncio.gather(*collectors)
        await publisher.close()

    for viewer in viewers:
        video = viewer.capture("video").frames
        audio = viewer.capture("audio").frames
        assert all(f.mime == codec for f in video)
        assert_contiguous_run(video, reference["video"])
        assert len(audio) >= 40
        assert_contiguous_run(audio, reference["audio"])
        numbers = decode_numbers(video)
        assert None not in numbers
        assert len(numbers) >= 40
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))

    assert decodes.video == 0 and decodes.video_decoders == 0, decodes.counts
    await wait_for(lambda: not core.list_tracks() and not core.peers, 5)


async def test_midstream_join_gets_keyframe_and_viewer_pli_reaches_publisher() -> None:
    core = MediaCore(MediaConfig(periodic_pli=None, pli_interval=0.5))
    await core.start()
    try:
        publisher = Publisher("video/VP8", audio=False)
        await publisher.publish(await core.create_peer(), "live/kf")
        (info,) = core.list_tracks("live/kf/")
        await wait_for(lambda: core.track_started(info.track_id))
        # aiortc's VP8 encoder uses kf_max_dist=3000: without a PLI no keyframe would follow
        await asyncio.sleep(1.5)
        plis_before = publisher.plis_received

        viewer = Subscriber(kinds=["video"])
        started = await viewer.play(await core.create_peer(), [info.track_id])
        capture = viewer.capture("video")
        await wait_for(lambda: len(capture.frames) >= 1, 5)
        first_frame_delay = capture.frames[0].at - started
        assert capture.frames[0].data[0] & 1 == 0, "first forwarded frame is not a keyframe"
        assert first_frame_delay < 1.0, first_frame_delay
        assert publisher.plis_received > plis_before
        numbers = decode_numbers(capture.frames[:1])
        assert numbers and numbers[0] is not None and numbers[0] > 20

        # the viewer reports picture loss: the core forwards it to the publisher
        await asyncio.sleep(0.6)  # leave the 500 ms throttle window of the join PLI
        (sub,) = core.subscriptions_of(info.track_id)
        client_receiver = viewer.pc.getTransceivers()[0].receiver
        ssrc = hook.media_ssrc(client_receiver)
        assert ssrc is not None
        plis_before = publisher.plis_received
        keyframes_before = sum(1 for f in capture.frames if f.data[0] & 1 == 0)
        await client_receiver._send_rtcp_pli(ssrc)
        await wait_for(lambda: publisher.plis_received > plis_before, 3)
        await wait_for(
            lambda: sum(1 for f in capture.frames if f.data[0] & 1 == 0) > keyframes_before, 3
        )
        assert sub.plis_received >= 1

        # throttling: a burst of viewer PLIs yields at most 2 upstream (one now, one deferred)
        await asyncio.sleep(0.6)
        plis_before = publisher.plis_received
        for _ in range(10):
            await client_receiver._send_rtcp_pli(ssrc)
        await asyncio.sleep(1.2)
        assert 1 <= publisher.plis_received - plis_before <= 2

        stats = await core.sample_stats()
        assert stats.subscriptions[sub.id].plis_received >= 11
        assert stats.tracks[info.track_id].plis_sent >= 3

        await viewer.close()
        await publisher.close()
    finally:
        await core.stop()


async def test_calls_style_renegotiation(core: MediaCore) -> None:
    """Server offers subscriptions on a long-lived peer; the client later publishes too."""
    publisher = Publisher("video/VP8")
    await publisher.publish(await core.create_peer(), "calls/s1")
    ids = sorted(t.track_id for t in core.list_tracks("calls/s1/"))
    await wait_for(lambda: all(core.track_started(i) for i in ids))

    client = Subscriber(kinds=[])
    peer = await core.create_peer()
    subs = [peer.add_subscription(track_id) for track_id in ids]
    offer = await peer.create_offer()
    assert all(sub.mid is not None for sub in subs)
    await client.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    client.hook_receivers()
    await client.pc.setLocalDescription(await client.pc.createAnswer())
    await peer.accept_answer(client.pc.localDescription.sdp)
    by_mid = {sub.mid: sub for sub in subs}
    for mid, capture in client.captures.items():
        assert capture.kind == by_mid[mid].track.kind
    await wait_for(lambda: len(client.capture("video").frames) >= 10, 10)

    # the client now publishes a track on the same peer, named by mid
    from media_clients import NumberedVideoTrack

    client.pc.addTransceiver(NumberedVideoTrack(), direction="sendonly")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    client.hook_receivers()
    new_mid = client.pc.getTransceivers()[-1].mid
    answer = await peer.accept_offer(
        client.pc.localDescription.sdp, publish={new_mid: "calls/s2/cam"}
    )
    await client.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    assert core.get_track("calls/s2/cam") is not None
    async with core.tap("calls/s2/cam") as tap:
        frame = await asyncio.wait_for(tap.get(), 10)
        assert frame is not None and frame.keyframe and frame.codec == "video/VP8"

    # drop the video subscription and renegotiate: the m-line goes inactive
    video_sub = next(s for s in subs if s.track.kind == "video")
    peer.remove_subscription(video_sub)
    assert core.subscriptions_of(video_sub.track_id) == []
    offer = await peer.create_offer()
    assert "a=inactive" in offer
    await client.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await client.pc.setLocalDescription(await client.pc.createAnswer())
    await peer.accept_answer(client.pc.localDescription.sdp)

    await client.close()
    await publisher.close()
    await wait_for(lambda: not core.peers and not core.list_tracks(), 10)


async def test_publisher_leaving_ends_tracks_and_fires_events(core: MediaCore) -> None:
    events: list[object] = []
    core.add_listener(events.append)
    publisher = Publisher("video/VP8")
    publisher_peer = await core.create_peer()
    await publisher.publish(publisher_peer, "live/bye")
    ids = {t.track_id for t in core.list_tracks("live/bye/")}
    await wait_for(lambda: all(core.track_started(i) for i in ids))
    viewer = Subscriber()
    viewer_peer = await core.create_peer()
    await viewer.play(viewer_peer, sorted(ids))
    tap = core.tap(next(iter(ids)))
    await wait_for(lambda: len(viewer.capture("video").frames) > 5)

    await publisher_peer.close("test")
    assert core.list_tracks("live/bye/") == []
    assert viewer_peer.subscriptions == {}
    assert await asyncio.wait_for(_drain(tap), 5) >= 0
    ended = {e.track.track_id for e in events if type(e).__name__ == "TrackEnded"}
    assert ended == ids
    started = {e.track.track_id for e in events if type(e).__name__ == "TrackStarted"}
    assert started == ids
    assert any(type(e).__name__ == "PeerClosed" for e in events)
    await viewer.close()
    await publisher.close()
    await wait_for(lambda: not core.peers, 10)


async def _drain(tap: Tap) -> int:
    n = 0
    async for _ in tap:
        n += 1
    return n


def drop_every(transport: object, ssrc: int, nth: int) -> list[int]:
    """Make `transport` silently drop every `nth` RTP packet of `ssrc` (not retransmissions)."""
    original = transport._send_rtp  # type: ignore[attr-defined]
    dropped: list[int] = []
    seen = 0

    async def _send_rtp(data: bytes) -> None:
        nonlocal seen
        is_rtcp = len(data) > 1 and 192 <= data[1] <= 223
        if not is_rtcp and int.from_bytes(data[8:12], "big") == ssrc:
            seen += 1
            if seen % nth == 0:
                dropped.append(int.from_bytes(data[2:4], "big"))
                return
        await original(data)

    transport._send_rtp = _send_rtp  # type: ignore[attr-defined]
    return dropped


async def test_nack_repairs_loss_on_both_legs(core: MediaCore) -> None:
    publisher = Publisher("video/VP8", audio=False)
    await publisher.publish(await core.create_peer(), "live/loss")
    (info,) = core.list_tracks("live/loss/")
    await wait_for(lambda: core.track_started(info.track_id))
    track = core._tracks[info.track_id]
    sender = publisher.video_sender
    lost_upstream = drop_every(sender.transport, sender._ssrc, 7)

    viewer = Subscriber(kinds=["video"])
    await viewer.play(await core.create_peer(), [info.track_id])
    (sub,) = core.subscriptions_of(info.track_id)
    lost_downstream = drop_every(sub.sender.transport, sub.sender._ssrc, 7)
    reference: list[Captured] = []
    tap = core.tap(info.track_id)
    collector = asyncio.create_task(collect(tap, reference))
    capture = viewer.capture("video")
    await wait_for(lambda: len(capture.frames) >= 60, 15)
    tap.close()
    await collector
    await viewer.close()
    await publisher.close()

    assert len(lost_upstream) >= 5 and len(lost_downstream) >= 5
    assert track.nacks_sent > 0  # the core NACKed the publisher
    assert sub.nacks_received > 0  # the viewer NACKed, the core's sender history answered
    # downstream loss fully repaired: the viewer got exactly the frames the core assembled
    assert_contiguous_run(capture.frames, reference)
    # upstream loss repaired too: no frame missing between the first and last one
    numbers = decode_numbers(capture.frames)
    readable = [(i, n) for i, n in enumerate(numbers) if n is not None]
    assert len(numbers) == len(capture.frames)
    assert len(readable) >= 0.95 * len(numbers)
    first_i, first_n = readable[0]
    assert all(n - first_n == i - first_i for i, n in readable)


async def test_stats_report_rates_and_feedback(core: MediaCore) -> None:
    publisher = Publisher("video/VP8")
    publisher_peer = await core.create_peer()
    await publisher.publish(publisher_peer, "live/stats")
    infos = {t.kind: t for t in core.list_tracks("live/stats/")}
    viewer = Subscriber()
    viewer_peer = await core.create_peer()
    await viewer.play(viewer_peer, [infos["audio"].track_id, infos["video"].track_id])
    await wait_for(lambda: len(viewer.capture("video").frames) > 30, 10)
    await core.sample_stats()
    await asyncio.sleep(1.0)
    stats = await core.sample_stats()
    video = stats.tracks[infos["video"].track_id]
    assert 20 < video.fps < 40 and video.bitrate_bps > 10_000
    assert video.packets_received > 0 and video.packets_lost == 0 and video.subscribers == 1
    audio = stats.tracks[infos["audio"].track_id]
    assert 40 < audio.fps < 60
    subs = [stats.subscriptions[s] for s in stats.peers[viewer_peer.id].subscriptions]
    assert {s.track_id for s in subs} == {infos["audio"].track_id, infos["video"].track_id}
    assert all(s.fps > 0 and s.packets_sent > 0 and s.mid is not None for s in subs)
    await wait_for(lambda: core.stats().peers[viewer_peer.id].rtt_ms is not None, 5)
    peer_stats = stats.peers[publisher_peer.id]
    assert peer_stats.bytes_received > 0 and peer_stats.recv_bitrate_bps > 0
    assert peer_stats.published == sorted(infos[k].track_id for k in ("audio", "video"))
    assert isinstance(stats.as_dict()["tracks"], dict)
    await viewer.close()
    await publisher.close()


async def test_calls_receiver_retarget_and_transceiver_reuse(core: MediaCore) -> None:
    """SFU-offered receive transceiver, switching a sender's source, reusing a transceiver."""
    publishers = {name: Publisher("video/VP8", audio=False) for name in ("a", "b")}
    publishers["b"].video.count = 10_000  # b's frame numbers are far from a's
    for name, publisher in publishers.items():
        await publisher.publish(await core.create_peer(), f"calls/{name}")
    track_a, track_b = (core.list_tracks(f"calls/{n}/")[0].track_id for n in ("a", "b"))
    await wait_for(lambda: core.track_started(track_a) and core.track_started(track_b))

    client = Subscriber(kinds=[])
    peer = await core.create_peer()
    receiver = peer.add_receiver("video")
    sub = peer.add_subscription(track_a)
    offer = await peer.create_offer()
    await client.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    client.hook_receivers()
    from media_clients import NumberedVideoTrack

    upload = next(t for t in client.pc.getTransceivers() if t.mid == receiver.mid)
    upload.sender.replaceTrack(NumberedVideoTrack())
    upload.direction = "sendonly"
    await client.pc.setLocalDescription(await client.pc.createAnswer())
    registered = await peer.accept_answer(
        client.pc.localDescription.sdp, publish={receiver.mid: "calls/c/cam"}
    )
    assert registered == ["calls/c/cam"]
    await wait_for(lambda: core.track_started("calls/c/cam"))
    assert sub.mid is not None
    capture = client.captures[sub.mid]
    await wait_for(lambda: len(capture.frames) >= 15)

    # switch the sender to track b without renegotiation
    switched_at = len(capture.frames)
    moved = peer.retarget_subscription(sub, track_b)
    assert sub.ended and moved.mid == sub.mid
    assert core.subscriptions_of(track_a) == [] and core.subscriptions_of(track_b) == [moved]
    await wait_for(lambda: len(capture.frames) >= switched_at + 15)
    numbers = decode_numbers(capture.frames)
    assert None not in numbers
    jumps = [b - a for a, b in itertools.pairwise(numbers) if b - a != 1]
    assert len(jumps) == 1 and jumps[0] > 9_000  # one discontinuity: a's counter -> b's
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(capture.frames)]
    assert all(0 < step < 90000 // 2 for step in steps), "RTP timestamps jumped at the switch"

    # stop sending, then reuse the parked transceiver for another track
    peer.remove_subscription(moved)
    assert moved.transceiver.direction == "inactive"
    parked_at = len(capture.frames)
    await asyncio.sleep(0.3)
    assert len(capture.frames) <= parked_at + 1
    again = peer.add_subscription(track_a, transceiver=moved.transceiver)
    assert again.mid == moved.mid and moved.transceiver.direction == "sendonly"
    await wait_for(lambda: len(capture.frames) >= parked_at + 10)
    with pytest.raises(ValueError):
        peer.add_subscription(track_b, transceiver=moved.transceiver)  # already in use

    # end a published track through the API
    assert await core.end_track("calls/c/cam") is True
    assert core.get_track("calls/c/cam") is None
    assert await core.end_track("calls/c/cam") is False

    await client.close()
    for publisher in publishers.values():
        await publisher.close()
    await wait_for(lambda: not core.peers, 10)
