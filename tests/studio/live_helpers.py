"""A real gateway, an HTTP client that contract-checks every reply, and media fixtures."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from tests import contract
from tests.media.media_clients import NumberedVideoTrack, prefer
from tests.rtc import local_peer_connection
from tests.server import RunningServer, start_server

ADMIN_KEY = "sk_live_golive_" + "c3" * 12


def start_gateway(data_dir: Path, **env: str) -> RunningServer:
    base = {"MEDIAGATE_BOOTSTRAP_API_KEY": ADMIN_KEY, "STUDIO_RATE_LIMIT_RPS": "0",
            "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8",
            "STUDIO_RESTREAM_BACKOFF_INITIAL": "0.5", "STUDIO_RESTREAM_BACKOFF_MAX": "2"}
    return start_server(data_dir, env=base | env, ready_path="/v1/health")


class Api:
    """httpx against the real server; every reply is contract-checked and remembered."""

    def __init__(self, server: RunningServer, key: str = ADMIN_KEY) -> None:
        self.base = server.base_url
        self.client = httpx.Client(base_url=server.base_url, timeout=30,
                                   headers={"Authorization": f"Bearer {key}"})
        self.bodies: list[bytes] = []

    def __call__(self, method: str, path: str, json: Any = None, expect: int | None = None,
                 **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, json=json, **kwargs)
        self.bodies.append(response.content)
        contract.check("studio", method, path, response)
        if expect is not None:
            assert response.status_code == expect, (method, path, response.text)
        return response

    def studio_with(self, source: dict[str, Any],
                    destinations: list[tuple[str, str]]) -> tuple[str, str, list[str]]:
        """A studio with one active source and an RTMP destination per (url, key)."""
        sid = self("POST", "/v1/studios", {"name": "live"}, expect=201).json()["id"]
        src = self("POST", f"/v1/studios/{sid}/sources", source, expect=201).json()
        dids = [
            self("POST", f"/v1/studios/{sid}/destinations",
                 {"name": f"d{i}", "platform": "custom", "rtmpUrl": url, "streamKey": key},
                 expect=201).json()["id"]
            for i, (url, key) in enumerate(destinations)
        ]
        return sid, src["id"], dids

    def upload_clip(self, clip: Path) -> str:
        """Upload a file to the media library and wait until it is READY; its asset id."""
        data = clip.read_bytes()
        upload = self("POST", "/v1/media", {"filename": clip.name, "contentType": "video/mp4",
                                            "byteSize": len(data)}, expect=201).json()
        reply = httpx.put(upload["uploadUrl"], content=data, timeout=30,
                          headers={"Content-Type": "video/mp4"})
        contract.check("studio", "PUT", urlsplit(upload["uploadUrl"]).path, reply)
        assert reply.status_code == 200
        asset_id: str = upload["assetId"]

        def ready() -> bool:
            assets = self("GET", "/v1/media?limit=200", expect=200).json()["data"]
            return any(a["id"] == asset_id and a["status"] == "READY" for a in assets)

        self.wait_for(ready, 30, "the clip probed")
        return asset_id

    def statuses(self, sid: str) -> dict[str, tuple[str, str | None]]:
        data = self("GET", f"/v1/studios/{sid}/destinations", expect=200).json()["data"]
        return {d["id"]: (d.get("status", ""), d.get("statusReason")) for d in data}

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def close(self) -> None:
        self.client.close()


def make_clip(path: Path, seconds: int = 4, size: str = "640x360") -> Path:
    """An MP4 with H.264 (GOP 1 s) and AAC, generated with ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", str(path)],
        check=True, timeout=120,
    )
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


class WhipPublisher:
    """An aiortc client publishing video (H.264 unless told) and Opus audio to a WHIP URL."""

    def __init__(self, video_codec: str = "video/H264") -> None:
        self.pc = local_peer_connection()
        self.video = NumberedVideoTrack()
        self.audio = AudioStreamTrack()
        self.pc.addTransceiver(self.audio, direction="sendonly")
        prefer(self.pc.addTransceiver(self.video, direction="sendonly"), video_codec)
        self.location: str | None = None

    async def publish(self, base_url: str, whip_url: str, token: str) -> httpx.Response:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            response = await client.post(
                whip_url, content=self.pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )
        contract.check("studio", "POST", whip_url, response)
        assert response.status_code == 201, response.text
        self.location = response.headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        return response

    async def close(self) -> None:
        await self.pc.close()


async def wait_async(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
