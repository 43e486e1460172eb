"""Recording (RECORD_ENABLED=1) with upload to a real S3 endpoint (moto's server on
127.0.0.1), and FFmpeg's WHIP muxer (PyAV) publishing H.264 through the HTTP API. The server
has an ADMIN_TOKEN, so the recordings are admin-only: the client here sends it."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import httpx
import pytest

from gateway.live.uploader import S3Uploader, object_key
from gateway.settings import Settings
from tests.live.helpers import play, publish, request, rooms, start_live_server
from tests.media.media_clients import Publisher, Subscriber, wait_for
from tests.s3server import s3_client, s3_server
from tests.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
WHIP_HELPER = ROOT / "tests" / "media" / "helpers_whip.py"
BUCKET = "recordings"
S3_ENV = {
    "S3_USE_SSL": "0",
    "S3_PATH_STYLE": "1",
    "S3_BUCKET": BUCKET,
    "S3_ACCESS_KEY": "test-access",
    "S3_SECRET_KEY": "test-secret",
    "S3_REGION": "us-east-1",
    "S3_PREFIX": "live/",
}
ADMIN = "recording-admin-token"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3_server(tmp_path_factory.mktemp("moto"), BUCKET) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str,
                ) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("recording")
    server = start_live_server(
        base / "data", RECORD_ENABLED="1", RECORD_DIR=str(base / "records"),
        UPLOAD_RECORDINGS="1", S3_ENDPOINT=s3_endpoint, ADMIN_TOKEN=ADMIN, **S3_ENV,
    )
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture
async def http(live_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's client (rooms are open: only ADMIN_TOKEN is configured)."""
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30,
                                 headers={"X-Auth-Token": ADMIN}) as client:
        yield client


async def wait_for_records(http: httpx.AsyncClient, prefix: str, suffixes: set[str],
                           within: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + within
    while True:
        response = await request(http, "GET", "/api/records")
        found = [r for r in response.json() if str(r["name"]).startswith(prefix)]
        if {Path(str(r["name"])).suffix for r in found} >= suffixes:
            return found
        assert time.monotonic() < deadline, response.json()
        await asyncio.sleep(0.5)


async def download(http: httpx.AsyncClient, record: dict[str, object], into: Path) -> Path:
    response = await request(http, "GET", str(record["url"]))
    assert response.status_code == 200
    assert len(response.content) == record["size"]
    path = into / str(record["name"])
    path.write_bytes(response.content)
    return path


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams[0]))


async def test_five_second_publish_is_recorded_and_uploaded(
    http: httpx.AsyncClient, tmp_path: Path, s3_endpoint: str,
) -> None:
    publisher = Publisher()
    try:
        response = await publish(http, "rec", publisher)
        assert response.status_code == 201
        await wait_for(lambda: publisher.pc.connectionState == "connected", 15)
        await asyncio.sleep(5)
        assert (await request(http, "DELETE", response.headers["location"])).status_code == 200
    finally:
        await publisher.close()

    records = await wait_for_records(http, "rec_", {".ivf", ".ogg"})
    by_suffix = {Path(str(r["name"])).suffix: r for r in records}
    assert str(by_suffix[".ivf"]["name"]).startswith("rec_video")
    assert str(by_suffix[".ogg"]["name"]).startswith("rec_audio")
    video = await download(http, by_suffix[".ivf"], tmp_path)
    audio = await download(http, by_suffix[".ogg"], tmp_path)
    async with httpx.AsyncClient(base_url=str(http.base_url), timeout=30) as anonymous:
        for path in ("/api/records", str(by_suffix[".ivf"]["url"])):
            refused = await request(anonymous, "GET", path)
            assert refused.status_code == 401 and refused.text == "unauthorized\n"
    assert decoded_frames(video) >= 60  # ~5 s of 30 fps, minus the wait for a keyframe
    assert decoded_frames(audio) >= 100  # 20 ms Opus frames

    # the finished files were uploaded as S3_PREFIX + name, byte for byte
    client = s3_client(s3_endpoint)
    deadline = time.monotonic() + 20
    expected = {f"live/{r['name']}": r["size"] for r in records}
    while True:
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix="live/rec_")
        objects = {o["Key"]: o["Size"] for o in listing.get("Contents", [])}
        if objects == expected:
            break
        assert time.monotonic() < deadline, (objects, expected)
        await asyncio.sleep(0.5)
    body = client.get_object(Bucket=BUCKET, Key=f"live/{by_suffix['.ivf']['name']}")["Body"]
    assert body.read() == video.read_bytes()


async def test_uploader_deletes_local_file_only_after_upload(tmp_path: Path,
                                                            s3_endpoint: str) -> None:
    settings = Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path), "UPLOAD_RECORDINGS": "1",
        "DELETE_RECORDING_AFTER_UPLOAD": "1", "S3_ENDPOINT": s3_endpoint,
        **{**S3_ENV, "S3_PREFIX": "/nested/prefix/"},
    })
    path = tmp_path / "room_video1_1.ivf"
    path.write_bytes(b"DKIF-data")
    uploader = S3Uploader(settings)
    assert await uploader.upload(path) == "nested/prefix/room_video1_1.ivf"
    assert not path.exists()
    obj = s3_client(s3_endpoint).get_object(Bucket=BUCKET, Key="nested/prefix/room_video1_1.ivf")
    assert obj["Body"].read() == b"DKIF-data"

    broken = S3Uploader(Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path), "UPLOAD_RECORDINGS": "1",
        "DELETE_RECORDING_AFTER_UPLOAD": "1", "S3_ENDPOINT": s3_endpoint,
        **{**S3_ENV, "S3_BUCKET": "no-such-bucket"},
    }))
    kept = tmp_path / "room_audio0_2.ogg"
    kept.write_bytes(b"OggS")
    assert await broken.upload(kept) is None
    assert kept.exists()  # a failed upload never loses the recording
    assert object_key("", "a.ogg") == "a.ogg"


async def test_ffmpeg_whip_muxer_publishes_h264_to_an_aiortc_viewer(
    live_server: RunningServer, http: httpx.AsyncClient, tmp_path: Path,
) -> None:
    muxer = await asyncio.create_subprocess_exec(
        sys.executable, str(WHIP_HELPER), f"{live_server.base_url}/api/whip/publish/ffmpeg",
        "5", "handshake_timeout=8000", "loglevel=16",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    viewer = Subscriber()
    try:
        deadline = time.monotonic() + 15
        while not (await rooms(http)).get("ffmpeg", {}).get("tracks"):
            assert time.monotonic() < deadline and muxer.returncode is None
            await asyncio.sleep(0.2)
        response = await play(http, "ffmpeg", viewer)
        assert response.status_code == 201, response.text
        await wait_for(lambda: len(viewer.captures) == 2 and
                       len(viewer.capture("video").frames) >= 30, 15)
        video = viewer.capture("video")
        assert {f.mime for f in video.frames} == {"video/H264"}
        assert len(viewer.capture("audio").frames) > 0
        codec = av.CodecContext.create("h264", "r")
        pictures = [p for f in video.frames for p in codec.decode(av.Packet(f.data))]
        assert len(pictures) >= 20 and pictures[0].width == 320
        output, _ = await asyncio.wait_for(muxer.communicate(), 30)
        assert muxer.returncode == 0, output.decode(errors="replace")
    finally:
        if muxer.returncode is None:
            muxer.kill()
            await muxer.wait()
        await viewer.close()

    # the H.264 track was recorded too, to MP4
    records = await wait_for_records(http, "ffmpeg_", {".mp4", ".ogg"})
    mp4 = next(r for r in records if str(r["name"]).endswith(".mp4"))
    assert decoded_frames(await download(http, mp4, tmp_path)) >= 60
