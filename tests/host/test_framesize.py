"""Frame sizes from real encoder output (the status and capture meta report them)."""

from __future__ import annotations

import fractions

import av
import pytest

from gateway.host.framesize import frame_size


def _keyframe(codec: str, width: int, height: int) -> bytes:
    context = av.CodecContext.create(codec, "w")
    context.width, context.height = width, height
    context.pix_fmt = "yuv420p"
    context.time_base = fractions.Fraction(1, 30)
    if codec == "libx264":
        context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane in frame.planes:
        plane.update(b"\x80" * plane.buffer_size)
    frame.pts = 0
    packets = list(context.encode(frame)) + list(context.encode(None))
    return bytes(packets[0])


@pytest.mark.parametrize(("codec", "mime"), [("libx264", "video/H264"), ("libvpx", "video/VP8")])
@pytest.mark.parametrize(("width", "height"), [(320, 240), (1920, 1080), (642, 362)])
def test_size_of_a_real_keyframe(codec: str, mime: str, width: int, height: int) -> None:
    assert frame_size(mime, _keyframe(codec, width, height)) == (width, height)


def test_garbage_has_no_size() -> None:
    assert frame_size("video/H264", b"\x00\x00\x01\x67\xff") is None
    assert frame_size("video/VP8", b"\x01\x02") is None
    assert frame_size("video/AV1", b"\x00" * 20) is None
