"""Keyframe detection, PLI throttling and per-consumer queue policy (no network)."""

from __future__ import annotations

import asyncio

from media.forward import FrameQueue
from media.keyframes import KeyframeRequester, is_h264_keyframe, is_keyframe, is_vp8_keyframe
from media.types import EncodedFrame


def frame(n: int, keyframe: bool, kind: str = "video") -> EncodedFrame:
    codec = "video/VP8" if kind == "video" else "audio/opus"
    clock = 90000 if kind == "video" else 48000
    return EncodedFrame(bytes([n]), n * 3000, codec, keyframe, clock)


def test_keyframe_detection() -> None:
    assert is_vp8_keyframe(b"\x10\x02\x00\x9d\x01\x2a")  # frame tag bit 0 == 0
    assert not is_vp8_keyframe(b"\x31\x02\x00")
    idr = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88"
    assert is_h264_keyframe(idr)
    assert not is_h264_keyframe(b"\x00\x00\x00\x01\x41\x9a\x00")
    assert is_keyframe("video/H264", idr) and is_keyframe("audio/opus", b"\xfc")


async def test_queue_starts_at_keyframe_and_recovers_from_overflow() -> None:
    requests: list[int] = []
    queue = FrameQueue("video", 3, on_need_keyframe=lambda: requests.append(1))
    queue.push(frame(0, False))  # dropped: waiting for a keyframe
    for n, key in ((1, True), (2, False), (3, False)):
        queue.push(frame(n, key))
    queue.push(frame(4, False))  # overflow: flush, wait for the next keyframe
    assert len(queue) == 0 and requests == [1]
    queue.push(frame(5, False))
    queue.push(frame(6, True))
    queue.push(frame(7, False))
    assert [(await queue.get()).timestamp for _ in range(2)] == [6 * 3000, 7 * 3000]  # type: ignore[union-attr]
    assert queue.dropped == 6
    queue.close()
    assert await queue.get() is None


async def test_audio_queue_drops_oldest() -> None:
    queue = FrameQueue("audio", 2)
    for n in range(4):
        queue.push(frame(n, True, "audio"))
    got = [await queue.get(), await queue.get()]
    assert [f.timestamp for f in got if f] == [2 * 3000, 3 * 3000]


async def test_pli_throttle_defers_one_request() -> None:
    sent: list[float] = []

    async def send() -> bool:
        sent.append(asyncio.get_running_loop().time())
        return True

    requester = KeyframeRequester(send, min_interval=0.2)
    requester.request()
    for _ in range(5):
        requester.request()
    await asyncio.sleep(0.3)
    assert len(sent) == 2  # one now, one deferred to the end of the window
    assert sent[1] - sent[0] >= 0.19
    # a keyframe arriving after the request cancels the deferred PLI
    requester.request()
    requester.keyframe_received()
    await asyncio.sleep(0.3)
    assert len(sent) == 2
    await requester.close()
    assert requester.sent == 2
