"""Real nginx with libnginx-mod-rtmp as an RTMP destination, and PyAV readers of its streams."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from tests.pg import free_port

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
CONF = """load_module {module};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 128; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{ live on; }}
    }}
}}
"""


class NginxRtmp:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(CONF.format(module=MODULE, dir=self.dir, port=self.port))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live"

    def start(self) -> NginxRtmp:
        self.process = subprocess.Popen(
            ["nginx", "-c", str(self.conf), "-p", str(self.dir), "-g", "daemon off;",
             "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.dir / "error.log").read_text(errors="replace"))
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def kill(self) -> None:
        """SIGKILL the whole server (master and worker), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            worker_pids = subprocess.run(["pgrep", "-P", str(self.process.pid)],
                                         capture_output=True, text=True).stdout.split()
            self.process.send_signal(signal.SIGKILL)
            for pid in worker_pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class RtmpReader:
    """Plays one RTMP stream with PyAV on a thread and decodes everything it gets."""

    url: str
    duration: float = 4.0
    video_frames: int = 0
    audio_frames: int = 0
    video_codec: str | None = None
    audio_codec: str | None = None
    first_packet_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    packets: int = 0
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> RtmpReader:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            container = av.open(self.url, timeout=(15.0, 5.0), options={"rtmp_live": "live"})
        except av.FFmpegError as exc:
            self.error = str(exc)
            self.ended_at = time.monotonic()
            return
        started = time.monotonic()
        try:
            for stream in container.streams:
                if stream.type == "video":
                    self.video_codec = stream.codec_context.name
                elif stream.type == "audio":
                    self.audio_codec = stream.codec_context.name
            for packet in container.demux():
                if packet.size == 0:
                    continue
                self.packets += 1
                if self.first_packet_at is None:
                    self.first_packet_at = time.monotonic()
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                if packet.stream.type == "video":
                    self.video_frames += len(frames)
                elif packet.stream.type == "audio":
                    self.audio_frames += len(frames)
                if self._stop.is_set() or time.monotonic() - started > self.duration:
                    break
        except av.FFmpegError as exc:
            self.error = str(exc)
        finally:
            self.ended_at = time.monotonic()
            container.close()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 30) -> RtmpReader:
        assert self._thread is not None
        self._thread.join(timeout)
        return self
