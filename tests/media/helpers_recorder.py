"""Encoded test media for the recorder: real encoder output wrapped as EncodedFrames."""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av

from tests.media.helpers_whip import silent_audio_frame, video_frame

RTP_BASE = 0xFFFF_0000  # wraps around 2**32 within the first second


@dataclass(frozen=True)
class Frame:
    data: bytes
    timestamp: int
    codec: str
    keyframe: bool
    clock_rate: int


VIDEO_ENCODERS = {
    "video/VP8": ("libvpx", {"deadline": "realtime", "cpu-used": "8", "g": "30"}),
    "video/VP9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "g": "30"}),
    "video/H264": (
        "libx264",
        {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "x264-params": "keyint=30:min-keyint=30:repeat-headers=1:annexb=1",
        },
    ),
}


def video_frames(codec: str, count: int, fps: int = 30) -> list[Frame]:
    name, options = VIDEO_ENCODERS[codec]
    ctx = av.CodecContext.create(name, "w")
    ctx.width, ctx.height, ctx.pix_fmt = 160, 120, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps)
    ctx.bit_rate = 200_000
    ctx.options = options
    packets: list[av.Packet] = []
    for i in range(count):
        frame = video_frame(160, 120, i)
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    step = 90000 // fps
    return [
        Frame(bytes(p), (RTP_BASE + p.pts * step) % 2**32, codec, p.is_keyframe, 90000)
        for p in packets
    ]


def opus_frames(count: int) -> list[Frame]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "stereo", "s16"
    ctx.time_base = fractions.Fraction(1, 48000)
    packets: list[av.Packet] = []
    for i in range(count):
        frame = silent_audio_frame(960)
        frame.pts = i * 960
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return [
        Frame(bytes(p), (RTP_BASE + i * 960) % 2**32, "audio/opus", True, 48000)
        for i, p in enumerate(packets)
    ]


def decode_file(path: str) -> tuple[int, float]:
    """(decoded frame count, duration in seconds) of the file's only stream."""
    with av.open(path) as container:
        stream = container.streams[0]
        count = 0
        first = last = None
        for frame in container.decode(stream):
            count += 1
            t = float(frame.pts * frame.time_base) if frame.pts is not None else None
            if t is not None:
                first = t if first is None else first
                last = t
        duration = (last or 0) - (first or 0)
    return count, duration


def record_then_die(directory: str, codec: str, count: int) -> None:
    """Record ``count`` frames, wait until they are muxed, then SIGKILL this process."""
    import os
    import signal

    from media.recorder import Recorder

    frames = opus_frames(count) if codec == "audio/opus" else video_frames(codec, count)
    recorder = Recorder(directory, "crash", "t1", codec, frames[0].clock_rate)
    for frame in frames:
        recorder.write(frame)
    assert recorder.sync()
    print(recorder.path, len(frames), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    import sys

    record_then_die(sys.argv[1], sys.argv[2], int(sys.argv[3]))
