from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import pytest

from media.recorder import Recorder, opus_samples
from tests.media.helpers_recorder import decode_file, opus_frames, video_frames

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("helpers_recorder.py")
CASES = [
    ("video/VP8", "ivf", 90, 3.0),
    ("video/VP9", "ivf", 90, 3.0),
    ("video/H264", "mp4", 90, 3.0),
    ("audio/opus", "ogg", 150, 3.0),
]


def make_frames(codec: str, count: int):  # type: ignore[no-untyped-def]
    return opus_frames(count) if codec == "audio/opus" else video_frames(codec, count)


def assert_close(actual: float, expected: float, tolerance: float) -> None:
    assert abs(actual - expected) <= tolerance * expected, (actual, expected)


@pytest.mark.parametrize(("codec", "ext", "count", "seconds"), CASES)
def test_records_playable_file(
    tmp_path: Path, codec: str, ext: str, count: int, seconds: float
) -> None:
    frames = make_frames(codec, count)
    recorder = Recorder(tmp_path, "room-1", "track:a", codec, frames[0].clock_rate)
    assert all(recorder.write(f) for f in frames)
    path = recorder.close()
    assert recorder.error is None
    assert re.fullmatch(rf"room-1_track_a_\d{{10}}\.{ext}", path.name), path.name
    decoded, duration = decode_file(str(path))
    assert_close(decoded, len(frames), 0.05)
    assert_close(duration, seconds, 0.1)
    with av.open(str(path)) as container:  # no transcoding: the codec is unchanged
        assert container.streams[0].codec_context.name in codec.lower().split("/")[1]


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
def test_video_starts_at_first_keyframe_with_pts_zero(tmp_path: Path, codec: str) -> None:
    frames = make_frames(codec, 75)
    late = frames[10:]  # joins mid-GOP: the next keyframe is the encoder's 30th frame
    first_key = next(i for i, f in enumerate(late) if f.keyframe)
    recorder = Recorder(tmp_path, "r", "v", codec, 90000)
    results = [recorder.write(f) for f in late]
    assert results[:first_key] == [False] * first_key
    path = recorder.close()
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    assert decoded[0].pts == 0 and decoded[0].key_frame
    assert_close(len(decoded), len(late) - first_key, 0.05)


def test_two_recordings_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    a = Recorder(tmp_path, "r", "t", "audio/opus", 48000)
    b = Recorder(tmp_path, "r", "t", "audio/opus", 48000)
    assert a.path != b.path
    a.close()
    b.close()


def test_rejects_unknown_codec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot record"):
        Recorder(tmp_path, "r", "t", "video/AV1", 90000)


def test_opus_toc_durations() -> None:
    assert opus_samples(bytes([0b11111000])) == 960  # CELT 20 ms, one frame
    assert opus_samples(bytes([0b00001001])) == 1920  # SILK 40 ms
    assert opus_samples(bytes([0b11111011, 0x03])) == 2880  # 3 x 20 ms (code 3)


def test_dropped_recorder_is_finalised(tmp_path: Path) -> None:
    frames = make_frames("video/H264", 60)
    recorder = Recorder(tmp_path, "r", "gc", "video/H264", 90000)
    for frame in frames:
        recorder.write(frame)
    path, thread = recorder.path, recorder._thread
    del recorder
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()
    decoded, _ = decode_file(str(path))
    assert_close(decoded, len(frames), 0.05)


@pytest.mark.parametrize(
    ("codec", "count", "min_ratio"),
    [
        ("video/VP8", 90, 0.95),  # IVF: every muxed frame is on disk
        ("audio/opus", 150, 0.85),  # Ogg: at most the open 200 ms page is lost
        ("video/H264", 90, 0.6),  # fMP4: at most the open fragment (<= 1 s / 1 GOP) is lost
    ],
)
def test_killed_process_leaves_playable_file(
    tmp_path: Path, codec: str, count: int, min_ratio: float
) -> None:
    proc = subprocess.run(
        [sys.executable, str(HELPER), str(tmp_path), codec, str(count)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    path, fed = proc.stdout.split()
    decoded, duration = decode_file(path)
    assert decoded >= min_ratio * int(fed), (decoded, fed)
    assert duration > 0


async def test_event_loop_usage_with_aclose(tmp_path: Path) -> None:
    frames = make_frames("audio/opus", 50)
    recorder = Recorder(tmp_path, "r", "a", "audio/opus", 48000)
    for frame in frames:
        recorder.write(frame)
    path = await recorder.aclose()
    assert not recorder.write(frames[0])  # closed
    assert decode_file(str(path))[0] == len(frames)


def test_h264_waits_for_parameter_sets(tmp_path: Path) -> None:
    from media.recorder import has_sps_pps

    frames = make_frames("video/H264", 31)
    key = frames[0]
    assert key.keyframe and has_sps_pps(key.data)
    idr_only = b"\x00\x00\x00\x01\x65" + b"\x88" * 20
    assert not has_sps_pps(idr_only)
    recorder = Recorder(tmp_path, "r", "h", "video/H264", 90000)
    assert not recorder.write(type(key)(idr_only, key.timestamp, key.codec, True, 90000))
    assert all(recorder.write(f) for f in frames)
    path = recorder.close()
    assert_close(decode_file(str(path))[0], len(frames), 0.05)


async def test_record_consumes_an_async_frame_source(tmp_path: Path) -> None:
    import asyncio

    from media.recorder import record

    frames = make_frames("video/VP8", 45)

    async def source():  # type: ignore[no-untyped-def]
        for frame in frames:
            yield frame
            await asyncio.sleep(0)

    path = await record(source(), Recorder(tmp_path, "r", "tap", "video/VP8", 90000))
    assert_close(decode_file(str(path))[0], len(frames), 0.05)
