"""Fails loudly when aiortc's internals that media.hook relies on change."""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
from pathlib import Path

import aiortc
import aiortc.rtcrtpreceiver as rtcrtpreceiver
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import H264Encoder, OpusEncoder, Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from media_clients import Publisher, wait_for

from media import MediaCore, hook
from tests.rtc import local_peer_connection

pytestmark = pytest.mark.usefixtures("loopback_ice")

RMEM_MAX = Path("/proc/sys/net/core/rmem_max")


def params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def source(func: object) -> str:
    return inspect.getsource(func)  # type: ignore[arg-type]


def test_version_gate() -> None:
    hook.check_aiortc_version(aiortc.__version__)
    hook.check_aiortc_version("1.16.9")
    for bad in ("1.15.0", "1.17.0", "2.0.0"):
        with pytest.raises(ImportError):
            hook.check_aiortc_version(bad)


def test_receiver_internals() -> None:
    # frames are put on the decoder queue as (codec, frame) from _handle_rtp_packet
    assert params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"]
    handle = source(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in handle
    assert "self.__decoder_thread" in handle
    # the decoder thread only reads with get() and stops on None; started by receive()
    assert params(rtcrtpreceiver.decoder_worker) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    worker = source(rtcrtpreceiver.decoder_worker)
    assert "input_q.get()" in worker and "get_decoder(codec)" in worker
    assert "if task is None" in worker
    assert "self.__decoder_queue" in source(RTCRtpReceiver.receive)
    stop = source(RTCRtpReceiver._RTCRtpReceiver__stop_decoder)  # type: ignore[attr-defined]
    assert "self.__decoder_queue.put(None)" in stop and ".join()" in stop
    # keyframe requests and feedback counters
    assert params(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"]
    assert params(RTCRtpReceiver._send_rtcp_nack) == ["self", "media_ssrc", "lost"]
    assert callable(rtcrtpreceiver.get_decoder)
    # jitter frames
    frame = JitterFrame(data=b"x", timestamp=1)
    assert (frame.data, frame.timestamp) == (b"x", 1)
    # stream statistics used by media.stats
    stats = rtcrtpreceiver.StreamStatistics(90000)
    for name in ("packets_received", "packets_lost", "jitter"):
        inspect.getattr_static(stats, name)  # raises AttributeError if gone


def test_sender_internals() -> None:
    handle = source(RTCRtpSender._handle_rtcp_packet)
    assert params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    assert "self._send_keyframe()" in handle and "self._retransmit(seq)" in handle
    assert params(RTCRtpSender._send_keyframe) == ["self"]
    nxt = source(RTCRtpSender._next_encoded_frame)
    assert "isinstance(data, Frame)" in nxt and "self.__encoder.pack(data)" in nxt
    for encoder in (Vp8Encoder, H264Encoder, OpusEncoder):
        assert params(encoder.pack) == ["self", "packet"]
        assert "convert_timebase(packet.pts, packet.time_base" in source(encoder.pack)


async def test_private_attributes_on_live_objects() -> None:
    pc = local_peer_connection()
    try:
        transceiver = pc.addTransceiver("video")
        receiver = transceiver.receiver
        assert isinstance(getattr(receiver, hook.DECODER_QUEUE), queue.Queue)
        assert getattr(receiver, hook.DECODER_THREAD) is None
        assert getattr(receiver, hook.RECEIVER_STARTED) is False
        assert getattr(receiver, hook.REMOTE_STREAMS) == {}
        assert getattr(receiver, hook.RTX_SSRC) == {}
        assert hasattr(transceiver, "_codecs")
        assert isinstance(getattr(transceiver.sender, hook.SENDER_RTP_EXITED), asyncio.Event)
        assert hook.sender_stopped(transceiver.sender) is False
        sink = hook.install_receive_hook(receiver)
        assert hook.install_receive_hook(receiver) is sink
        assert hook.media_ssrc(receiver) is None
        setattr(receiver, hook.RECEIVER_STARTED, True)
        other = pc.addTransceiver("audio").receiver
        setattr(other, hook.RECEIVER_STARTED, True)
        with pytest.raises(RuntimeError):
            hook.install_receive_hook(other)
        setattr(receiver, hook.RECEIVER_STARTED, False)
        setattr(other, hook.RECEIVER_STARTED, False)
    finally:
        await pc.close()


async def test_sctp_stream_ids() -> None:
    pc = local_peer_connection()
    try:
        assert hook.sctp_stream_ids(pc) == set()
        pc.createDataChannel("a", negotiated=True, id=3)
        pc.createDataChannel("b", negotiated=True, id=7)
        assert isinstance(getattr(pc.sctp, hook.SCTP_DATA_CHANNELS), dict)
        assert hook.sctp_stream_ids(pc) == {3, 7}
    finally:
        await pc.close()


async def test_hooked_receiver_never_decodes_and_thread_exits(core: MediaCore) -> None:
    threads_before = set(threading.enumerate())
    with hook.count_decodes() as decodes:
        publisher = Publisher("video/VP8")
        peer = await core.create_peer()
        await publisher.publish(peer, "hook/test")
        await wait_for(lambda: all(core.track_started(t.track_id) for t in core.list_tracks()))
        receivers = [t.receiver for t in peer.published.values()]
        sinks = [hook.receive_hook(r) for r in receivers]
        assert all(s is not None for s in sinks)
        await wait_for(lambda: all(s is not None and s.frames >= 10 for s in sinks))
        decoder_threads = [getattr(r, hook.DECODER_THREAD) for r in receivers]
        assert all(t is not None and t.is_alive() for t in decoder_threads)
        await peer.close()
        await publisher.close()
    assert sum(decodes.counts.values()) == 0
    assert sum(decodes.decoders_created.values()) == 0
    for thread in decoder_threads:
        thread.join(2)
        assert not thread.is_alive()
    await asyncio.sleep(0)
    assert not {t for t in threading.enumerate() if t.name.endswith("-decoder")} - threads_before


async def test_receive_buffer_on_ice_sockets() -> None:
    import socket

    pc = local_peer_connection()
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())  # gathers: sockets exist now
        connection = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection
        assert connection._protocols, "aioice Connection._protocols is gone or empty"
        assert hook.set_receive_buffer(pc, 1 << 20) == len(connection._protocols)
        sock = connection._protocols[0].transport.get_extra_info("socket")
        rmem_max = int(RMEM_MAX.read_text())  # noqa: ASYNC240 (procfs, instant)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= min(1 << 20, rmem_max)
    finally:
        await pc.close()
