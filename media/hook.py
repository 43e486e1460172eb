"""Every use of aiortc internals by the media core lives here.

aiortc reassembles complete encoded frames in ``RTCRtpReceiver._handle_rtp_packet`` (on the
event loop) and puts them as ``(codec, JitterFrame)`` on a private ``queue.Queue`` that a
per-receiver decoder thread (started by ``receive()``) drains and decodes. We replace that
queue with a `FrameSink` before ``receive()`` runs: ``put()`` hands the encoded frame straight
to the core's fan-out, and the decoder thread blocks in ``get()`` until the ``None`` shutdown
sentinel, so it never decodes anything.

On the send side, a subscriber's PLI/FIR ends up in ``RTCRtpSender._send_keyframe()``, which
only flags the encoder; for packed media we override it per sender instance to ask the
publisher for a keyframe instead. ``tests/media/test_hook.py`` checks these internals so an
aiortc upgrade that changes them fails loudly.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiortc
import aiortc.rtcrtpreceiver as _receiver_module
from aiortc import RTCPeerConnection
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import AnyRtcpPacket

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC = ((1, 16), (1, 17))  # >= 1.16, < 1.17


def check_aiortc_version(version: str) -> None:
    major, minor = (int(part) for part in version.split(".")[:2])
    low, high = SUPPORTED_AIORTC
    if not low <= (major, minor) < high:
        raise ImportError(
            f"media.hook supports aiortc >={low[0]}.{low[1]},<{high[0]}.{high[1]}, "
            f"found {version}: re-check the receiver/sender internals it relies on"
        )


check_aiortc_version(aiortc.__version__)

FrameCallback = Callable[[RTCRtpCodecParameters, JitterFrame], None]
EndCallback = Callable[[], None]

# Name-mangled private attributes of RTCRtpReceiver that the hook touches.
DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
RECEIVER_STARTED = "_RTCRtpReceiver__started"
REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"
RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
SENDER_RTP_EXITED = "_RTCRtpSender__rtp_exited"
SCTP_DATA_CHANNELS = "_data_channels"  # RTCSctpTransport: stream id -> RTCDataChannel


def _ignore_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
    pass


def _ignore_end() -> None:
    pass


class FrameSink:
    """Stands in for ``RTCRtpReceiver.__decoder_queue`` (only ``put``/``get`` are used)."""

    def __init__(self) -> None:
        self._on_frame: FrameCallback = _ignore_frame
        self._on_end: EndCallback = _ignore_end
        self._sentinel: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.ended = False
        self.frames = 0

    def bind(self, on_frame: FrameCallback, on_end: EndCallback) -> None:
        self._on_frame = on_frame
        self._on_end = on_end

    def unbind(self) -> None:
        self._on_frame = _ignore_frame
        self._on_end = _ignore_end

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None, *args: Any) -> None:
        if item is None:
            # __stop_decoder(): release the idle decoder thread, then report the end.
            self._sentinel.put(None)
            if not self.ended:
                self.ended = True
                self._on_end()
            return
        self.frames += 1
        codec, frame = item
        try:
            self._on_frame(codec, frame)
        except Exception:
            logger.exception("frame callback failed")

    def get(self, *args: Any) -> None:
        # Runs in aiortc's decoder thread; only the shutdown sentinel ever arrives.
        return self._sentinel.get()


def install_receive_hook(receiver: RTCRtpReceiver) -> FrameSink:
    """Divert `receiver`'s encoded frames to a `FrameSink` (idempotent).

    Must run before ``receiver.receive()``, i.e. right after ``setRemoteDescription``.
    """
    current = getattr(receiver, DECODER_QUEUE)
    if isinstance(current, FrameSink):
        return current
    if getattr(receiver, RECEIVER_STARTED):
        raise RuntimeError("receive hook must be installed before RTCRtpReceiver.receive()")
    sink = FrameSink()
    setattr(receiver, DECODER_QUEUE, sink)
    return sink


def receive_hook(receiver: RTCRtpReceiver) -> FrameSink | None:
    current = getattr(receiver, DECODER_QUEUE)
    return current if isinstance(current, FrameSink) else None


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC of the primary (non-RTX) stream received so far, if any."""
    rtx = getattr(receiver, RTX_SSRC)
    ssrcs = [ssrc for ssrc in getattr(receiver, REMOTE_STREAMS) if ssrc not in rtx]
    return ssrcs[-1] if ssrcs else None


def receiver_stream_stats(receiver: RTCRtpReceiver) -> tuple[int, int, int]:
    """(packets received, packets lost, jitter in RTP units) of the primary stream.

    ``getStats()`` reports the RTX stream under the same id, so read the statistics directly.
    """
    ssrc = media_ssrc(receiver)
    if ssrc is None:
        return 0, 0, 0
    stream = getattr(receiver, REMOTE_STREAMS)[ssrc]
    return stream.packets_received, stream.packets_lost, stream.jitter


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    ssrc = media_ssrc(receiver)
    if ssrc is None:
        return False
    await receiver._send_rtcp_pli(ssrc)
    return True


def count_receiver_feedback(
    receiver: RTCRtpReceiver, on_pli: Callable[[], None], on_nack: Callable[[int], None]
) -> None:
    """Count PLIs and NACKed packets this receiver sends upstream (any cause)."""
    send_pli_orig = receiver._send_rtcp_pli
    send_nack_orig = receiver._send_rtcp_nack

    async def _send_rtcp_pli(ssrc: int) -> None:
        on_pli()
        await send_pli_orig(ssrc)

    async def _send_rtcp_nack(ssrc: int, lost: list[int]) -> None:
        on_nack(len(lost))
        await send_nack_orig(ssrc, lost)

    receiver._send_rtcp_pli = _send_rtcp_pli  # type: ignore[method-assign]
    receiver._send_rtcp_nack = _send_rtcp_nack  # type: ignore[method-assign]


def sender_stopped(sender: RTCRtpSender) -> bool:
    """True once the sender's RTP loop has exited (it cannot be restarted)."""
    return getattr(sender, SENDER_RTP_EXITED).is_set()


def intercept_keyframe_requests(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote end sends PLI or FIR for this sender's stream.

    ``RTCRtpSender._send_keyframe`` would only flag aiortc's encoder, which packed media
    never uses.
    """
    sender._send_keyframe = callback  # type: ignore[method-assign]


def watch_sender_rtcp(
    sender: RTCRtpSender, on_packet: Callable[[AnyRtcpPacket], None]
) -> None:
    """Observe every RTCP packet routed to `sender` before aiortc handles it.

    Wraps the sender once; calling again replaces the observer (e.g. a retargeted
    subscription on the same transceiver).
    """
    first = not hasattr(sender, "_media_rtcp_observer")
    sender._media_rtcp_observer = on_packet  # type: ignore[attr-defined]
    if not first:
        return
    original: Callable[[AnyRtcpPacket], Awaitable[None]] = sender._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        sender._media_rtcp_observer(packet)  # type: ignore[attr-defined]
        await original(packet)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


def sctp_stream_ids(pc: RTCPeerConnection) -> set[int]:
    """Stream ids of the data channels registered on `pc`'s SCTP transport (both sides')."""
    sctp = pc.sctp
    return {int(i) for i in getattr(sctp, SCTP_DATA_CHANNELS)} if sctp is not None else set()


def set_receive_buffer(pc: RTCPeerConnection, size: int) -> int:
    """Set SO_RCVBUF on every ICE socket of `pc` (gathered ones); returns how many were set.

    The event loop reads one datagram per socket per iteration; a larger kernel buffer rides
    out loop stalls (fan-out bursts, GC) instead of dropping the publisher's packets.
    """
    count = 0
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        for protocol in connection._protocols:
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                count += 1
    return count


class _CountingDecoder(Decoder):
    def __init__(self, inner: Decoder, mime: str, counts: Counter[str]) -> None:
        self._inner = inner
        self._mime = mime
        self._counts = counts

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        self._counts[self._mime] += 1
        return self._inner.decode(encoded_frame)


class DecodeCounter:
    """Counts decode calls made by aiortc's receiver decoder threads, per MIME type."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.decoders_created: Counter[str] = Counter()

    @property
    def video(self) -> int:
        return sum(n for mime, n in self.counts.items() if mime.startswith("video/"))

    @property
    def video_decoders(self) -> int:
        return sum(n for m, n in self.decoders_created.items() if m.startswith("video/"))


@contextlib.contextmanager
def count_decodes() -> Iterator[DecodeCounter]:
    """Wrap the ``get_decoder`` used by ``aiortc.rtcrtpreceiver.decoder_worker``.

    Counts every decode in this process while active (test instrumentation).
    """
    counter = DecodeCounter()
    original = _receiver_module.get_decoder

    def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
        mime = codec.mimeType.lower()
        counter.decoders_created[mime] += 1
        return _CountingDecoder(original(codec), mime, counter.counts)

    _receiver_module.get_decoder = get_decoder  # type: ignore[assignment]
    try:
        yield counter
    finally:
        _receiver_module.get_decoder = original
