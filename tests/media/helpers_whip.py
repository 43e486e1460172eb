"""Fixtures for the FFmpeg WHIP muxer interop test.

* ``WhipEndpoint``: a tiny raw-asyncio HTTP/1.1 WHIP endpoint on 127.0.0.1
  backed by a plain ``aiortc.RTCPeerConnection`` answerer.
* ``python tests/media/helpers_whip.py URL SECONDS``: a publisher that encodes
  a generated H.264 (libx264) + Opus stream with PyAV and muxes it into
  FFmpeg's ``whip`` format. It runs in a subprocess because
  ``avformat_write_header`` performs the whole blocking HTTP/ICE/DTLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import sys
import time
import uuid
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av.codec.context import Flags

PeerFactory = Callable[[], RTCPeerConnection]


class WhipEndpoint:
    def __init__(self, make_pc: PeerFactory) -> None:
        self._make_pc = make_pc
        self.pcs: list[RTCPeerConnection] = []
        self.video_frames = 0
        self.audio_frames = 0
        self.offers: list[str] = []
        self.answers: list[str] = []
        self.dtls_states: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/whip"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for pc in self.pcs:
            await pc.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, _path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "POST":
                answer = await self._answer(body.decode())
                payload = answer.encode()
                status = "201 Created"
                extra = f"Content-Type: application/sdp\r\nLocation: /whip/{uuid.uuid4().hex}\r\n"
            else:  # DELETE of the resource, OPTIONS, ...
                payload, status, extra = b"", "200 OK", ""
            writer.write(
                f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        finally:
            writer.close()

    async def _answer(self, offer_sdp: str) -> str:
        self.offers.append(offer_sdp)
        pc = self._make_pc()
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            task = asyncio.ensure_future(self._consume(track))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            transceiver.direction = "recvonly"
        await pc.setLocalDescription(await pc.createAnswer())
        dtls = pc.getTransceivers()[0].receiver.transport
        dtls.on("statechange", lambda: self.dtls_states.append(dtls.state))
        self.answers.append(pc.localDescription.sdp)
        return pc.localDescription.sdp

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                if track.kind == "video":
                    self.video_frames += 1
                else:
                    self.audio_frames += 1


def publish(url: str, seconds: float, options: dict[str, str] | None = None) -> None:
    fps = 30
    out = av.open(url, "w", format="whip", options=options or {"handshake_timeout": "8000"})
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
    video.options = {
        "profile": "baseline",
        "tune": "zerolatency",
        "preset": "ultrafast",
        "g": "30",
        "bf": "0",
    }
    video.codec_context.flags |= Flags.global_header
    audio = out.add_stream("libopus", rate=48000)
    audio.layout = "stereo"
    audio.codec_context.flags |= Flags.global_header

    samples = 960
    sent_samples = 0
    start = time.monotonic()
    for i in range(int(seconds * fps)):
        vf = video_frame(320, 240, i)
        vf.pts, vf.time_base = i, fractions.Fraction(1, fps)
        for pkt in video.encode(vf):
            out.mux(pkt)
        while sent_samples < (i + 1) * 48000 // fps:
            af = silent_audio_frame(samples)
            af.pts, af.time_base = sent_samples, fractions.Fraction(1, 48000)
            sent_samples += samples
            for pkt in audio.encode(af):
                out.mux(pkt)
        # pace in real time so the loopback socket buffers never overflow
        delay = start + (i + 1) / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for pkt in video.encode(None):
        out.mux(pkt)
    out.close()


def video_frame(width: int, height: int, i: int) -> av.VideoFrame:
    """A yuv420p frame whose luma changes every frame (so P-frames are not empty)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    row = bytes((x + i * 4) % 256 for x in range(frame.planes[0].line_size))
    frame.planes[0].update(row * height)
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    return frame


def silent_audio_frame(samples: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    frame.planes[0].update(bytes(frame.planes[0].buffer_size))
    frame.sample_rate = 48000
    return frame


if __name__ == "__main__":
    # usage: helpers_whip.py URL SECONDS [muxer_option=value ...]
    opts = {"handshake_timeout": "8000"}
    opts.update(dict(arg.split("=", 1) for arg in sys.argv[3:]))
    if "loglevel" in opts:
        av.logging.set_level(int(opts.pop("loglevel")))
    publish(sys.argv[1], float(sys.argv[2]), opts)
