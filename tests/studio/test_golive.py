"""Go-live for real: the gateway restreams to nginx-rtmp, and PyAV reads the streams back."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from tests.pg import free_port
from tests.studio.live_helpers import (
    Api,
    WhipPublisher,
    cpu_seconds,
    make_clip,
    start_gateway,
    wait_async,
)
from tests.studio.rtmp import NginxRtmp, RtmpReader


def test_media_source_goes_live_with_codec_copy(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    server = start_gateway(tmp_path / "data")
    api = Api(server)
    try:
        clip = api.upload_clip(make_clip(tmp_path / "clip.mp4", size="1280x720"))
        sid, _, dids = api.studio_with({"name": "loop", "type": "media", "url": clip},
                                       [(nginx.url, "copy-one"), (nginx.url, "copy-two")])
        requested = time.monotonic()
        result = api("POST", f"/v1/studios/{sid}/go-live", expect=200).json()
        assert sorted(result["destinationIds"]) == sorted(dids)
        assert result["encoderStreamId"].startswith("enc_")
        readers = [RtmpReader(f"{nginx.url}/{key}", duration=5).start()
                   for key in ("copy-one", "copy-two")]
        api.wait_for(lambda: all(s == "live" for s, _ in api.statuses(sid).values()), 15,
                     "both destinations live")
        live_latency = time.monotonic() - requested
        cpu_before, wall_before = cpu_seconds(server.process.pid), time.monotonic()
        for reader in readers:
            reader.join()
        cpu_share = (cpu_seconds(server.process.pid) - cpu_before) / (
            time.monotonic() - wall_before)
        for reader in readers:
            assert reader.error is None, reader.error
            assert (reader.video_codec, reader.audio_codec) == ("h264", "aac")
            # 5 s read: the 4 s clip loops; ~150 video and ~230 AAC frames when on time
            assert reader.video_frames >= 60, reader
            assert reader.audio_frames >= 90, reader
        status = api("GET", f"/v1/studios/{sid}/stream-status", expect=200).json()
        assert status["live"] is True and status["mode"] == "cloud"
        assert status["encoderStreamId"] == result["encoderStreamId"]
        assert status["liveStartedAt"] <= status["broadcastStartedAt"]
        # copying 720p30 to two destinations is cheap; transcoding it would take a core
        assert cpu_share < 0.25, cpu_share
        assert "video h264: copy" in server.log() and "audio aac: copy" in server.log()
        assert live_latency < 10

        again = api("POST", f"/v1/studios/{sid}/go-live", expect=200).json()
        assert again == result  # idempotent while live
        watchers = [RtmpReader(f"{nginx.url}/{key}", duration=60).start()
                    for key in ("copy-one", "copy-two")]
        api.wait_for(lambda: all(w.packets > 0 for w in watchers), 10, "watchers playing")
        stopped = time.monotonic()
        assert api("POST", f"/v1/studios/{sid}/go-offline", expect=200).json() == {"ok": True}
        for watcher in watchers:
            watcher.join(15)
            assert watcher.ended_at is not None and watcher.ended_at - stopped < 10
        assert {s for s, _ in api.statuses(sid).values()} == {"offline"}
        assert api("GET", f"/v1/studios/{sid}/stream-status", expect=200).json() == {
            "live": False}
    finally:
        api.close()
        assert server.stop() == 0, server.log()
        nginx.stop()


async def test_webrtc_input_goes_live_h264_copied_opus_to_aac(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    server = await asyncio.to_thread(start_gateway, tmp_path / "data")
    api = Api(server)
    publisher = WhipPublisher()
    try:
        sid, _, dids = await asyncio.to_thread(
            api.studio_with, {"name": "cam", "type": "webrtc-input"},
            [(nginx.url, "webrtc-one"), (nginx.url, "webrtc-two")])
        source = (await asyncio.to_thread(
            api, "GET", f"/v1/studios/{sid}/sources", None, 200)).json()["data"][0]
        await publisher.publish(server.base_url, source["whipUrl"], source["ingestToken"])

        def source_live() -> bool:
            data = api("GET", f"/v1/studios/{sid}/sources", expect=200).json()["data"]
            return data[0]["status"] == "live"

        await wait_async(lambda: source_live(), 20, "the source to publish")
        result = (await asyncio.to_thread(
            api, "POST", f"/v1/studios/{sid}/go-live", None, 200)).json()
        assert sorted(result["destinationIds"]) == sorted(dids)
        readers = [RtmpReader(f"{nginx.url}/{key}", duration=4).start()
                   for key in ("webrtc-one", "webrtc-two")]
        await wait_async(lambda: all(r.ended_at for r in readers), 40, "readers")
        for reader in readers:
            assert reader.error is None, reader.error
            assert (reader.video_codec, reader.audio_codec) == ("h264", "aac")
            assert reader.video_frames >= 30, reader
            assert reader.audio_frames >= 60, reader
        statuses = await asyncio.to_thread(api.statuses, sid)
        assert {s for s, _ in statuses.values()} == {"live"}
        log = server.log()
        assert "video video/h264: copy, once for 2 destination(s)" in log, log[-3000:]
        assert "audio audio/opus: transcode to AAC, once for 2 destination(s)" in log

        watchers = [RtmpReader(f"{nginx.url}/{key}", duration=60).start()
                    for key in ("webrtc-one", "webrtc-two")]
        await wait_async(lambda: all(w.packets > 0 for w in watchers), 15, "watchers")
        stopped = time.monotonic()
        await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-offline", None, 200)
        await wait_async(lambda: all(w.ended_at for w in watchers), 15, "streams to end")
        assert all(w.ended_at - stopped < 10 for w in watchers)  # type: ignore[operator]
    finally:
        await publisher.close()
        api.close()
        assert await asyncio.to_thread(server.stop) == 0, server.log()
        nginx.stop()


def test_rtmp_pull_source_goes_live(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    server = start_gateway(tmp_path / "data")
    api = Api(server)
    clip = make_clip(tmp_path / "ingest.mp4", seconds=2, size="320x240")
    encoder = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
         "-c", "copy", "-f", "flv", f"{nginx.url}/ingest"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sid, _, _ = api.studio_with({"name": "pull", "type": "rtmp",
                                     "url": f"{nginx.url}/ingest"}, [(nginx.url, "pulled")])
        api("POST", f"/v1/studios/{sid}/go-live", expect=200)
        reader = RtmpReader(f"{nginx.url}/pulled", duration=3).start().join()
        assert reader.error is None, reader.error
        assert (reader.video_codec, reader.audio_codec) == ("h264", "aac")
        assert reader.video_frames >= 45 and reader.audio_frames >= 60, reader
        sources = api("GET", f"/v1/studios/{sid}/sources", expect=200).json()["data"]
        assert sources[0]["status"] == "live"
        api("POST", f"/v1/studios/{sid}/go-offline", expect=200)
    finally:
        encoder.kill()
        encoder.wait()
        api.close()
        assert server.stop() == 0, server.log()
        nginx.stop()


def test_srt_pull_source_goes_live(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    server = start_gateway(tmp_path / "data")
    api = Api(server)
    clip = make_clip(tmp_path / "ingest.mp4", seconds=2, size="320x240")
    port = free_port()
    encoder = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
         "-c", "copy", "-f", "mpegts", f"srt://127.0.0.1:{port}?mode=listener"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sid, _, _ = api.studio_with(
            {"name": "srt", "type": "srt", "url": f"srt://127.0.0.1:{port}?mode=caller"},
            [(nginx.url, "from-srt")])
        api("POST", f"/v1/studios/{sid}/go-live", expect=200)
        reader = RtmpReader(f"{nginx.url}/from-srt", duration=3).start().join()
        assert reader.error is None, reader.error
        assert (reader.video_codec, reader.audio_codec) == ("h264", "aac")
        assert reader.video_frames >= 45 and reader.audio_frames >= 60, reader
        api("POST", f"/v1/studios/{sid}/go-offline", expect=200)
    finally:
        encoder.kill()
        encoder.wait()
        api.close()
        assert server.stop() == 0, server.log()
        nginx.stop()
    assert "video h264: copy" in server.log() and "audio aac: copy" in server.log()
