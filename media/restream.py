"""Restreaming: one source to N RTMP/RTMPS destinations as FLV, with PyAV.

Part of the media core; it reads published tracks through `MediaCore.tap`,
`request_keyframe` and `list_tracks`, and knows nothing about HTTP or which API asked
(the Studio API's go-live drives it).

Shape of one broadcast (an "encoder stream"):

    source -> pipeline thread -> normalised packets (H.264 + AAC, ms timestamps)
                                   |-> output thread -> FLV over RTMP (destination 1)
                                   |-> output thread -> FLV over RTMP (destination 2) ...

* H.264 and AAC are copied. Anything else (VP8 / Opus from WebRTC, other file codecs) is
  transcoded once in the pipeline thread, never once per destination.
* A source is either media-core tracks (WebRTC ingest; frames come from taps on the event
  loop and are queued to the pipeline thread), a local file looped in real time, or a
  network URL PyAV can read (rtmp://, srt://).
* Every output has its own thread and bounded queue: a slow or dead destination drops its
  own packets (video resumes at a keyframe) and never stalls the others or the event loop.
  An output that (re)connects starts with the cached packets since the last keyframe, so it
  need not wait for the next one.
  A failed output reports `error` and reconnects with exponential backoff.
* What a status reason says is generic: every connect, handshake or I/O failure of a
  destination reads `DELIVERY_FAILED` and of a source `SOURCE_FAILED`, whether the port was
  closed, silent or reset, so a client cannot use its destinations as a port scanner. The
  detail (stream keys masked) goes to the server log.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import io
import logging
import queue
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import av
from av.video.frame import PictureType

from .core import MediaCore
from .detach import spawn
from .tlsbridge import TlsBridge, bridged
from .types import EncodedFrame, TrackInfo, UnknownTrack

log = logging.getLogger("mediagate.media.restream")

MS = fractions.Fraction(1, 1000)
AUDIO_RATE = 48000
OUTPUT_QUEUE = 600  # ~8 s of 30 fps video + AAC
GOP_CACHE = 450  # packets since the last keyframe handed to an output when it (re)connects
INPUT_QUEUE = 1000
_WRAP = 1 << 32
_STOP = object()
SYSTEM_FFMPEG = shutil.which("ffmpeg") or "ffmpeg"

Kind = Literal["video", "audio"]
StatusCallback = Callable[[str, str, "str | None"], None]


@dataclass(frozen=True, slots=True)
class Packet:
    """A normalised packet: H.264 (Annex B or AVCC, as the template says) or AAC, in ms."""

    kind: Kind
    data: bytes
    pts: int
    dts: int
    keyframe: bool


Resolver = Callable[[str], str]
"""The caller's address check, run on every connect and reconnect: the URL as given -> the
URL to connect to (its host replaced by the checked address). Raises to refuse."""

REFUSED = "the address is not allowed"
"""All a status reason says about a refusal: the resolver's own text stays out of it."""
DELIVERY_FAILED = "delivery failed"
"""All a status reason says about a destination that failed (like gateway.egress's)."""
SOURCE_FAILED = "the source cannot be read"
"""All a status reason says about a source that failed."""


class AddressRefused(Exception):
    """The resolver refused the address; `str()` is its reason, for the server log only."""


def resolved(resolve: Resolver | None, url: str) -> str:
    if resolve is None:
        return url
    try:
        return resolve(url)
    except Exception as exc:
        raise AddressRefused(str(exc)) from None


def public_reason(exc: BaseException, failed: str) -> str:
    """What a client may see of `exc`: a refusal, or the generic `failed`."""
    return REFUSED if isinstance(exc, AddressRefused) else failed


def detail(exc: BaseException) -> str:
    """`exc` for the server log."""
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class SourcePlan:
    source_id: str
    mode: Literal["tracks", "file", "pull"]
    target: str
    """Track-id prefix (`tracks`), file path (`file`) or URL (`pull`)."""
    loop: bool = False
    resolve: Resolver | None = None
    """For `pull`: applied to `target` before every (re)connect."""


@dataclass(frozen=True)
class OutputPlan:
    id: str
    rtmp_url: str
    stream_key: str | None
    resolve: Resolver | None = None
    """Applied to `rtmp_url` before every (re)connect."""

    @property
    def url(self) -> str:
        return self.with_key(self.rtmp_url)

    def with_key(self, rtmp_url: str) -> str:
        if not self.stream_key:
            return rtmp_url
        return rtmp_url.rstrip("/") + "/" + self.stream_key

    def redact(self, text: str) -> str:
        if self.stream_key:
            text = text.replace(self.stream_key, "***")
        return text


@dataclass(frozen=True)
class RestreamPlan:
    studio_id: str
    stream_id: str
    source: SourcePlan
    outputs: list[OutputPlan]
    backoff_initial: float = 1.0
    backoff_max: float = 10.0
    connect_timeout: float = 15.0
    """Seconds a destination may spend connecting before it shows as `error`."""


class Templates:
    """The codec parameters every output copies: one stream object per kind, once known."""

    def __init__(self) -> None:
        self.expected: set[Kind] = set()
        self.streams: dict[Kind, Any] = {}
        self._holders: list[Any] = []  # containers the template streams belong to
        self.ready = threading.Event()
        self._lock = threading.Lock()

    def expect(self, kind: Kind) -> None:
        with self._lock:
            if not self.ready.is_set():
                self.expected.add(kind)

    def set(self, kind: Kind, stream: Any, holder: Any) -> None:
        with self._lock:
            if kind in self.streams:
                return
            self.streams[kind] = stream
            self._holders.append(holder)
            if self.expected and self.expected <= set(self.streams):
                self.ready.set()

    def close(self) -> None:
        for holder in self._holders:
            with contextlib.suppress(Exception):
                holder.close()
        self._holders.clear()


class _Timeline:
    """RTP timestamps of one track -> ms on the broadcast clock (first frame at arrival)."""

    def __init__(self, clock_rate: int, arrival_ms: int) -> None:
        self.clock_rate = clock_rate
        self.base_ms = arrival_ms
        self._last: int | None = None
        self._unwrapped = 0

    def ms(self, rtp: int) -> int:
        if self._last is not None:
            delta = (rtp - self._last) % _WRAP
            if delta >= _WRAP // 2:
                delta -= _WRAP
            self._unwrapped += delta
        self._last = rtp
        return self.base_ms + self._unwrapped * 1000 // self.clock_rate


def _holder() -> Any:
    """A throwaway FLV container: its streams hold encoder parameters (global headers)."""
    return av.open(io.BytesIO(), "w", format="flv")


class VideoEncoder:
    """Decoded video -> H.264 (libx264, zero latency), shared by every output."""

    def __init__(self, templates: Templates, bit_rate: int = 2_500_000) -> None:
        self.templates = templates
        self.bit_rate = bit_rate
        self.stream: Any = None
        self.force_keyframe = False
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        holder = _holder()
        stream = holder.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = self.bit_rate
        stream.codec_context.time_base = MS
        stream.codec_context.gop_size = 60
        stream.options = {"preset": "veryfast", "tune": "zerolatency", "bframes": "0"}
        holder.start_encoding()
        self.stream = stream
        self.templates.set("video", stream, holder)

    def encode(self, frame: av.VideoFrame, pts_ms: int) -> list[Packet]:
        if self.stream is None:
            self._open(frame.width - frame.width % 2, frame.height - frame.height % 2)
        ctx = self.stream.codec_context
        if (frame.width, frame.height, frame.format.name) != (ctx.width, ctx.height, "yuv420p"):
            frame = frame.reformat(width=ctx.width, height=ctx.height, format="yuv420p")
        pts = max(pts_ms, self._last_pts + 1)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, MS
        if self.force_keyframe:
            self.force_keyframe = False
            frame.pict_type = PictureType.I
        else:
            frame.pict_type = PictureType.NONE
        return [
            Packet("video", bytes(p), p.pts, p.dts if p.dts is not None else p.pts, p.is_keyframe)
            for p in self.stream.encode(frame)
        ]


class AudioEncoder:
    """Decoded audio -> AAC-LC 48 kHz stereo, shared by every output."""

    def __init__(self, templates: Templates, bit_rate: int = 128_000) -> None:
        self.templates = templates
        holder = _holder()
        stream = holder.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        stream.bit_rate = bit_rate
        holder.start_encoding()
        self.stream = stream
        templates.set("audio", stream, holder)
        self._resampler = av.AudioResampler(
            format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=1024
        )
        self._base_ms: int | None = None
        self._samples = 0

    def encode(self, frame: av.AudioFrame, pts_ms: int) -> list[Packet]:
        expected = (self._base_ms or 0) + self._samples * 1000 // AUDIO_RATE
        if self._base_ms is None or abs(expected - pts_ms) > 1000:  # start, or a gap
            self._base_ms, self._samples = pts_ms, 0
        frame.pts = None
        out: list[Packet] = []
        for resampled in self._resampler.resample(frame):
            resampled.pts, resampled.time_base = self._samples, fractions.Fraction(1, AUDIO_RATE)
            for packet in self.stream.encode(resampled):
                ms = self._base_ms + (packet.pts or 0) * 1000 // AUDIO_RATE
                out.append(Packet("audio", bytes(packet), ms, ms, True))
            self._samples += resampled.samples
        return out


class _Output(threading.Thread):
    """One destination: FLV over RTMP on its own thread, reconnecting with backoff."""

    def __init__(self, plan: OutputPlan, templates: Templates, backoff: tuple[float, float],
                 on_status: StatusCallback, request_keyframe: Callable[[], None],
                 join: Callable[[_Output], None], connect_timeout: float) -> None:
        super().__init__(name=f"restream-{plan.id}", daemon=True)
        self.plan = plan
        self.templates = templates
        self.backoff = backoff
        self.on_status = on_status
        self.request_keyframe = request_keyframe
        self.join_stream = join
        self.connect_timeout = connect_timeout
        self.status: tuple[str, str | None] = ("connecting", None)
        self.packets_sent = 0
        self.first_packet_at: float | None = None
        self.connecting_since: float | None = None
        self.last_write_at = 0.0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=OUTPUT_QUEUE)
        self._stopping = threading.Event()
        self._accepting = False
        self._resync = False

    @property
    def stalled(self) -> bool:
        """Connecting for too long, or live but the server has stopped taking data."""
        now = time.monotonic()
        if self.status[0] == "connecting":
            return (self.connecting_since is not None
                    and now - self.connecting_since > self.connect_timeout)
        return (self.status[0] == "live" and self._queue.qsize() > 0
                and now - self.last_write_at > self.connect_timeout)

    def _set_status(self, status: str, reason: str | None = None) -> None:
        if (status, reason) != self.status:
            self.status = (status, reason)
            self.on_status(self.plan.id, status, reason)

    def feed(self, packet: Packet) -> None:
        """Called from the pipeline thread; never blocks."""
        if not self._accepting:
            return
        if self._resync:
            if packet.kind != "video" or not packet.keyframe:
                return
            self._resync = False
        try:
            self._queue.put_nowait(packet)
        except queue.Full:  # this destination is behind: drop what is queued, restart at a key
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            self._resync = "video" in self.templates.streams
            if self._resync:
                self.request_keyframe()

    def prefill(self, gop: list[Packet]) -> None:
        """Called with the fan-out lock held: queue the cached GOP, then accept live packets."""
        if gop and self._resync:
            for packet in gop[: OUTPUT_QUEUE - 1]:
                self._queue.put_nowait(packet)
            self._resync = False
        self._accepting = True

    def stop(self) -> None:
        self._stopping.set()
        self._accepting = False
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)

    def run(self) -> None:
        delay = self.backoff[0]
        while not self._stopping.is_set():
            if not self.templates.ready.wait(0.2):
                continue
            self._set_status("connecting")
            started = self.connecting_since = time.monotonic()
            try:
                self._stream_once()
            except Exception as exc:  # the server refused, went away or the write failed
                if self._stopping.is_set():
                    break
                log.warning("destination %s: %s (retrying in %.1fs)", self.plan.id,
                            self.plan.redact(detail(exc)), delay)
                self._set_status("error", public_reason(exc, DELIVERY_FAILED))
                if time.monotonic() - started > 30:
                    delay = self.backoff[0]
                self._stopping.wait(delay)
                delay = min(delay * 2, self.backoff[1])
        self._set_status("offline")

    def _preflight(self, rtmp_url: str, server_name: str | None) -> None:
        """Connect and complete an RTMP handshake in Python, with a timeout, first.

        PyAV opens output I/O and writes the header holding the GIL and without a timeout:
        a blackholed host or a server that accepts and never answers would freeze the whole
        gateway. Checked here (GIL released while waiting), PyAV then connects to a server
        known to answer. Writes (`mux`) release the GIL; a server that stops reading
        blocks only this thread and shows as `stalled`. `server_name`: the name TLS sends
        (SNI) when `rtmp_url` is pinned to an address.
        """
        parts = urlsplit(rtmp_url)
        if parts.hostname is None:
            raise ValueError("the rtmpUrl has no host")
        secure = parts.scheme == "rtmps"
        port = parts.port or (443 if secure else 1935)
        timeout = self.connect_timeout
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout) as raw:
                sock: socket.socket = raw
                if secure:  # like FFmpeg's TLS default: encrypt, do not verify
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    sock = context.wrap_socket(raw,
                                               server_hostname=server_name or parts.hostname)
                sock.settimeout(timeout)
                sock.sendall(b"\x03" + bytes(1536))  # C0 + C1
                needed = 1 + 1536 + 1536  # S0 + S1 + S2
                while needed > 0:
                    chunk = sock.recv(min(needed, 65536))
                    if not chunk:
                        raise ConnectionError("the server closed the connection in the RTMP "
                                              "handshake")
                    needed -= len(chunk)
        except TimeoutError:
            raise TimeoutError("timed out connecting to the RTMP server") from None

    def _stream_once(self) -> None:
        self._accepting = False
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        rtmp_url = resolved(self.plan.resolve, self.plan.rtmp_url)  # checked, then pinned
        self._preflight(rtmp_url, urlsplit(self.plan.rtmp_url).hostname)
        rtmp_url, bridge = bridged(self.plan.rtmp_url, rtmp_url, self.connect_timeout)
        try:
            container = av.open(self.plan.with_key(rtmp_url), "w", format="flv")
        except Exception:
            if bridge is not None:
                bridge.close()
            raise
        try:
            streams: dict[str, Any] = {}
            for kind in ("video", "audio"):
                template = self.templates.streams.get(kind)  # type: ignore[call-overload]
                if template is not None:
                    stream = container.add_stream_from_template(template)
                    stream.time_base = MS
                    streams[kind] = stream
            container.start_encoding()  # connects and writes the FLV header
            self.connecting_since = None  # connected: waiting for media is not a stall
            has_video = "video" in streams
            self._resync = has_video
            self.join_stream(self)
            if self._resync:  # nothing cached: ask the source for a keyframe
                self.request_keyframe()
            base: int | None = None
            last_dts: dict[str, int] = {}
            while not self._stopping.is_set():
                try:
                    item = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is _STOP:
                    break
                assert isinstance(item, Packet)
                stream = streams.get(item.kind)
                if stream is None:
                    continue
                if base is None:
                    if has_video and item.kind != "video":
                        continue
                    base = item.dts
                dts = item.dts - base
                if dts < 0:
                    continue
                dts = max(dts, last_dts.get(item.kind, 0))
                last_dts[item.kind] = dts
                packet = av.Packet(item.data)
                packet.dts = dts
                packet.pts = max(item.pts - base, dts)
                packet.time_base = MS
                packet.is_keyframe = item.keyframe
                packet.stream = stream
                container.mux(packet)
                self.last_write_at = time.monotonic()
                self.packets_sent += 1
                if self.first_packet_at is None:
                    self.first_packet_at = time.monotonic()
                self._set_status("live")
        finally:
            self._accepting = False
            with contextlib.suppress(Exception):
                container.close()
            if bridge is not None:
                bridge.close()


class Restreamer:
    """One broadcast of one studio: the pipeline and one output per destination."""

    def __init__(self, plan: RestreamPlan, core: MediaCore, *,
                 on_status: Callable[[str, str, str | None], None] | None = None,
                 on_first_live: Callable[[], Awaitable[None]] | None = None) -> None:
        self.plan = plan
        self.core = core
        self.templates = Templates()
        self._on_status = on_status
        self._on_first_live = on_first_live
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outputs: dict[str, _Output] = {}
        self._input: queue.Queue[object] = queue.Queue(maxsize=INPUT_QUEUE)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._taps: dict[str, Any] = {}
        self._readers: set[asyncio.Task[None]] = set()
        self._video_track: str | None = None
        self._video_encoder: VideoEncoder | None = None
        self._file_audio_encoder: AudioEncoder | None = None
        self._first_live_sent = False
        self._fan_lock = threading.Lock()
        self._pipe: subprocess.Popen[bytes] | None = None
        self._bridge: TlsBridge | None = None
        self.codec_actions: dict[str, str] = {}
        self._gop: list[Packet] = []
        self.started_at = time.monotonic()
        self.error: str | None = None

    # -- public -----------------------------------------------------------------------------

    @property
    def stream_id(self) -> str:
        return self.plan.stream_id

    @property
    def destination_ids(self) -> list[str]:
        return list(self._outputs)

    @property
    def source_error(self) -> str | None:
        """Why the source cannot be read, while nothing has been read from it yet."""
        return self.error if self.error and not self.templates.ready.is_set() else None

    def output_status(self, output_id: str) -> tuple[str, str | None] | None:
        output = self._outputs.get(output_id)
        if output is None:
            return None
        if output.status[0] == "connecting" and self.source_error:
            return ("error", f"source: {self.source_error}")
        if output.stalled:  # connecting too long, or the server stopped taking data
            return ("error", DELIVERY_FAILED)
        return output.status

    def output_stats(self) -> dict[str, dict[str, Any]]:
        return {
            oid: {"status": o.status[0], "packets": o.packets_sent,
                  "firstPacketAt": o.first_packet_at}
            for oid, o in self._outputs.items()
        }

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.started_at = time.monotonic()
        for output_plan in self.plan.outputs:
            self._outputs[output_plan.id] = self._new_output(output_plan)
        source = self.plan.source
        if source.mode == "tracks":
            target = self._run_tracks
            for info in self.core.list_tracks(source.target + "/"):
                self.attach_track(info)
        else:
            target = self._run_container
        self._thread = threading.Thread(
            target=self._guarded(target), name=f"restream-{self.plan.stream_id}", daemon=True
        )
        self._thread.start()
        for output in self._outputs.values():
            output.start()

    def attach_track(self, info: TrackInfo) -> None:
        """Start reading a (newly) published track of the source; call on the event loop."""
        if not info.track_id.startswith(self.plan.source.target + "/"):
            return
        old = self._taps.get(info.track_id)
        if old is not None and not old.closed:
            return
        try:
            tap = self.core.tap(info.track_id)
        except UnknownTrack:
            return
        self._taps[info.track_id] = tap
        self.templates.expect(info.kind)
        if info.kind == "video":
            self._video_track = info.track_id
        task = spawn(self._read_tap(info, tap))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    def track_started(self, info: TrackInfo) -> None:
        """A track of the source started: attach it and every sibling published with it."""
        for sibling in self.core.list_tracks(self.plan.source.target + "/"):
            self.attach_track(sibling)
        self.attach_track(info)

    def _new_output(self, plan: OutputPlan) -> _Output:
        return _Output(plan, self.templates, (self.plan.backoff_initial, self.plan.backoff_max),
                       self._status_from_thread, self._request_keyframe_threadsafe, self._join,
                       self.plan.connect_timeout)

    async def add_output(self, plan: OutputPlan) -> None:
        """Add (or restart with new settings) one destination while live."""
        await self.remove_output(plan.id)
        output = self._new_output(plan)
        with self._fan_lock:
            self._outputs[plan.id] = output
        output.start()

    async def remove_output(self, output_id: str) -> None:
        with self._fan_lock:
            output = self._outputs.pop(output_id, None)
        if output is not None:
            output.stop()
            await asyncio.to_thread(output.join, 10)

    async def stop(self) -> None:
        self._stopping.set()
        for tap in self._taps.values():
            tap.close()
        for task in list(self._readers):
            task.cancel()
        with contextlib.suppress(queue.Full):
            self._input.put_nowait(_STOP)
        self._end_relay()  # unblocks a pipe read
        for output in self._outputs.values():
            output.stop()

        def join() -> None:
            # An output blocked on a server that never answers cannot be interrupted (PyAV
            # has no output I/O timeout); it is abandoned (daemon) after this grace.
            deadline = time.monotonic() + 10
            for thread in [self._thread, *self._outputs.values()]:
                if thread is not None:
                    thread.join(max(0.1, deadline - time.monotonic()))

        await asyncio.to_thread(join)
        self.templates.close()

    # -- thread <-> loop --------------------------------------------------------------------

    def _status_from_thread(self, output_id: str, status: str, reason: str | None) -> None:
        if self._on_status is not None:
            self._on_status(output_id, status, reason)
        if status == "live" and not self._first_live_sent and self._loop is not None:
            self._first_live_sent = True
            if self._on_first_live is not None:
                callback = self._on_first_live
                self._loop.call_soon_threadsafe(
                    lambda: self._loop.create_task(callback())  # type: ignore[union-attr]
                )

    def _request_keyframe_threadsafe(self) -> None:
        if self._video_encoder is not None:
            self._video_encoder.force_keyframe = True
        elif self._video_track is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_keyframe)

    def _request_keyframe(self) -> None:
        if self._video_track is not None:
            with contextlib.suppress(UnknownTrack):
                self.core.request_keyframe(self._video_track)

    def _now_ms(self) -> int:
        return int((time.monotonic() - self.started_at) * 1000)

    def _fan_out(self, packets: list[Packet]) -> None:
        with self._fan_lock:
            for packet in packets:
                if packet.kind == "video" and packet.keyframe:
                    self._gop = [packet]
                elif self._gop and len(self._gop) < GOP_CACHE:
                    self._gop.append(packet)
                else:  # no keyframe yet, or a GOP too long to cache
                    self._gop = []
                for output in list(self._outputs.values()):
                    output.feed(packet)

    def _join(self, output: _Output) -> None:
        with self._fan_lock:
            output.prefill(self._gop)

    def _guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:
                self.error = SOURCE_FAILED
                log.exception("encoder stream %s failed", self.plan.stream_id)

        return run

    # -- tracks (WebRTC ingest through the media core) ---------------------------------------

    async def _read_tap(self, info: TrackInfo, tap: Any) -> None:
        timeline: _Timeline | None = None
        async for frame in tap:
            if timeline is None:
                timeline = _Timeline(frame.clock_rate, self._now_ms())
            item = (info.kind, frame, timeline.ms(frame.timestamp))
            try:
                self._input.put_nowait(item)
            except queue.Full:
                log.warning("encoder stream %s: input queue full, dropping", self.plan.stream_id)

    def _run_tracks(self) -> None:
        video_copy_template = False
        video_decoder: Any = None
        audio_decoder: Any = None
        audio_encoder: AudioEncoder | None = None
        while not self._stopping.is_set():
            item = self._input.get()
            if item is _STOP:
                break
            kind, frame, pts = item  # type: ignore[misc]
            assert isinstance(frame, EncodedFrame)
            codec = frame.codec.lower()
            if kind == "video" and codec == "video/h264":
                if not video_copy_template:
                    if not frame.keyframe:
                        continue
                    video_copy_template = self._h264_template(frame.data)
                    if not video_copy_template:
                        continue
                    self._codec_plan("video", codec, "copy")
                self._fan_out([Packet("video", frame.data, pts, pts, frame.keyframe)])
            elif kind == "video":
                if video_decoder is None:
                    video_decoder = av.CodecContext.create(
                        "libvpx" if codec == "video/vp8" else codec.split("/")[1].lower(), "r"
                    )
                    self._video_encoder = VideoEncoder(self.templates)
                    self._codec_plan("video", codec, "transcode to H.264")
                for decoded in _decode(video_decoder, frame.data):
                    self._fan_out(self._video_encoder.encode(decoded, pts))  # type: ignore[union-attr]
            else:
                if audio_decoder is None:
                    audio_decoder = av.CodecContext.create(
                        "libopus" if codec == "audio/opus" else codec.split("/")[1].lower(), "r"
                    )
                    audio_decoder.sample_rate = AUDIO_RATE
                    audio_decoder.layout = "stereo"
                    audio_encoder = AudioEncoder(self.templates)
                    self._codec_plan("audio", codec, "transcode to AAC")
                assert audio_encoder is not None
                for decoded in _decode(audio_decoder, frame.data):
                    self._fan_out(audio_encoder.encode(decoded, pts))

    def _codec_plan(self, kind: str, codec: str, action: str) -> None:
        self.codec_actions[kind] = action
        log.info("encoder stream %s: %s %s: %s, once for %d destination(s)",
                 self.plan.stream_id, kind, codec, action, len(self._outputs))

    def _h264_template(self, keyframe: bytes) -> bool:
        """Codec parameters (SPS/PPS as extradata, size) from the first Annex B keyframe."""
        try:
            holder = av.open(io.BytesIO(keyframe), format="h264")
            stream = holder.streams.video[0]
            if not stream.codec_context.extradata:
                holder.close()
                return False
        except (av.FFmpegError, IndexError):
            return False
        self.templates.set("video", stream, holder)
        return True

    # -- files and network pulls -------------------------------------------------------------

    def _run_container(self) -> None:
        source = self.plan.source
        realtime = source.mode == "file"
        offset_ms = 0
        first = True
        delay = self.plan.backoff_initial
        while not self._stopping.is_set():
            try:
                container = self._open_source()
            except Exception as exc:
                self.error = public_reason(exc, SOURCE_FAILED)
                log.warning("encoder stream %s: cannot open source: %s", self.plan.stream_id,
                            detail(exc))
                self._end_relay()
                self._stopping.wait(delay)
                delay = min(delay * 2, self.plan.backoff_max)
                continue
            delay = self.plan.backoff_initial
            try:
                end_ms = self._play_container(container, offset_ms, realtime, first)
            except av.FFmpegError as exc:
                log.warning("encoder stream %s: source read failed: %s", self.plan.stream_id, exc)
                end_ms = None
            first = False
            self._end_relay()
            if end_ms is not None:
                offset_ms = end_ms
            if not source.loop and source.mode == "file":
                break
            if source.mode == "pull":
                offset_ms = self._now_ms()

    def _open_source(self) -> Any:
        """The source as a PyAV input container.

        PyAV's bundled FFmpeg has no SRT, so `srt://` is received by the system `ffmpeg`
        (built with libsrt) and handed over as MPEG-TS on a pipe, still without transcoding.
        """
        source = self.plan.source
        target = source.target
        if source.mode == "pull":
            self._end_relay()
            target, self._bridge = bridged(target, resolved(source.resolve, target), 10.0)
        if not target.startswith("srt://"):
            return av.open(target, timeout=(10.0, 10.0))
        self._pipe = subprocess.Popen(
            [SYSTEM_FFMPEG, "-loglevel", "quiet", "-nostdin", "-i", target, "-map", "0:v:0?",
             "-map", "0:a:0?", "-c", "copy", "-f", "mpegts", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert self._pipe.stdout is not None
        return av.open(self._pipe.stdout, format="mpegts")

    def _end_relay(self) -> None:
        """End the child that carried the last connection: the SRT receiver or the TLS
        bridge."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None and pipe.poll() is None:
            pipe.kill()
            pipe.wait(5)
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            bridge.close()

    def _play_container(self, container: Any, offset_ms: int, realtime: bool,
                        first: bool) -> int | None:
        """Play one pass of the container; returns the ms timestamp where it ended."""
        keep_open = False
        try:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            copy_video = video is not None and video.codec_context.name == "h264"
            copy_audio = audio is not None and audio.codec_context.name == "aac"
            if first:
                for kind, stream, copy in (("video", video, copy_video),
                                           ("audio", audio, copy_audio)):
                    if stream is not None:
                        self.templates.expect(kind)  # type: ignore[arg-type]
                        if copy:
                            self.templates.set(kind, stream, container)  # type: ignore[arg-type]
                            keep_open = True
            if first:
                for kind, stream, copy in (("video", video, copy_video),
                                           ("audio", audio, copy_audio)):
                    if stream is not None:
                        self._codec_plan(kind, stream.codec_context.name,
                                         "copy" if copy else "transcode")
            if video is not None and not copy_video and self._video_encoder is None:
                self._video_encoder = VideoEncoder(self.templates)
            if audio is not None and not copy_audio and self._file_audio_encoder is None:
                self._file_audio_encoder = AudioEncoder(self.templates)
            wall_start = time.monotonic()
            first_ms: int | None = None
            end_ms = offset_ms
            selected = [s for s in (video, audio) if s is not None]
            for packet in container.demux(*selected):
                if self._stopping.is_set():
                    return None
                if packet.dts is None or packet.size == 0:
                    continue
                tb = packet.time_base
                dts_ms = int(packet.dts * tb * 1000)
                pts_ms = int((packet.pts if packet.pts is not None else packet.dts) * tb * 1000)
                if first_ms is None:
                    first_ms = dts_ms
                    if not realtime:
                        offset_ms = self._now_ms()
                dts_out = dts_ms - first_ms + offset_ms
                pts_out = pts_ms - first_ms + offset_ms
                if realtime:
                    wait = wall_start + (dts_ms - first_ms) / 1000 - time.monotonic()
                    if wait > 0 and self._stopping.wait(wait):
                        return None
                duration = int((packet.duration or 0) * tb * 1000)
                end_ms = max(end_ms, pts_out + max(duration, 1))
                is_video = packet.stream is video
                if is_video and copy_video:
                    self._fan_out([Packet("video", bytes(packet), pts_out, dts_out,
                                          packet.is_keyframe)])
                elif not is_video and copy_audio:
                    self._fan_out([Packet("audio", bytes(packet), pts_out, dts_out, True)])
                else:
                    for decoded in packet.decode():
                        if is_video:
                            assert self._video_encoder is not None
                            self._fan_out(self._video_encoder.encode(decoded, pts_out))
                        elif self._file_audio_encoder is not None:
                            self._fan_out(self._file_audio_encoder.encode(decoded, pts_out))
            return end_ms
        finally:
            if not keep_open:
                container.close()


def _decode(decoder: Any, data: bytes) -> list[Any]:
    try:
        return list(decoder.decode(av.Packet(data)))
    except av.FFmpegError:
        return []
