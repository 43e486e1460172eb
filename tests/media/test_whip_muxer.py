"""FFmpeg's WHIP muxer (PyAV 18.1) publishing H.264 + Opus to a local aiortc answerer.

Why it failed without ``media.dtls`` (captured on ``lo`` with tshark): the muxer is
the DTLS server (``a=setup:passive``); its ServerHello picks
ECDHE-ECDSA-AES128-GCM-SHA256 + SRTP_AES128_CM_HMAC_SHA1_80 + extended master secret,
then its Certificate carries an ECDSA key on ``namedCurve 1.3.132.0.33 (secp224r1)``.
aiortc's OpenSSL 4.0 (pyOpenSSL on the cryptography wheel) does not support P-224 as a
TLS group, fails with ``SSL routines: wrong curve`` and sends
``Alert (Level: Fatal, Description: Illegal Parameter)``, which the muxer logs as
"A TLS fatal alert has been received" / "DTLS session failed". The same publisher given
a P-256 certificate (``cert_file``/``key_file`` muxer options) works with plain aiortc.
``test_plain_aiortc_answerer_fails`` keeps that evidence executable.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport

from media import dtls
from media.network import NetworkConfig, apply_network_config, make_configuration
from tests.media.helpers_whip import WhipEndpoint

HELPER = Path(__file__).with_name("helpers_whip.py")
ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = NetworkConfig(loopback=True, allowed_ips=["127.0.0.1"])
P224_OID = bytes.fromhex("06052b81040021")  # DER of OID 1.3.132.0.33


def loopback_pc() -> RTCPeerConnection:
    pc = RTCPeerConnection(make_configuration([]))
    apply_network_config(pc, LOOPBACK)
    return pc


def fixed_pc() -> RTCPeerConnection:
    pc = loopback_pc()
    assert dtls.configure_peer_connection(pc)
    return pc


async def publish(make_pc: Callable[[], RTCPeerConnection], seconds: float) -> WhipEndpoint:
    endpoint = WhipEndpoint(make_pc)
    await endpoint.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HELPER),
            endpoint.url,
            str(seconds),
            "handshake_timeout=5000",
            "loglevel=16",
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 20)
        endpoint.publisher_rc = proc.returncode  # type: ignore[attr-defined]
        endpoint.publisher_output = output.decode(errors="replace")  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)  # let the last RTP packets drain
    finally:
        await endpoint.close()
    return endpoint


def test_internals_pinned() -> None:
    dtls.check_aiortc_internals()
    assert dtls.compat_available()


async def test_ffmpeg_whip_muxer_publishes_to_aiortc() -> None:
    peer_certs: list[bytes] = []
    original = dtls._CompatConnection.get_peer_certificate

    def spy(self: dtls._CompatConnection, *, as_cryptography: bool = False):  # type: ignore[no-untyped-def]
        cert = original(self, as_cryptography=as_cryptography)
        from cryptography.hazmat.primitives.serialization import Encoding

        peer_certs.append(cert.public_bytes(Encoding.DER))
        return cert

    dtls._CompatConnection.get_peer_certificate = spy  # type: ignore[method-assign]
    try:
        endpoint = await publish(fixed_pc, seconds=3)
    finally:
        dtls._CompatConnection.get_peer_certificate = original  # type: ignore[method-assign]

    output = endpoint.publisher_output  # type: ignore[attr-defined]
    assert endpoint.publisher_rc == 0, output  # type: ignore[attr-defined]
    assert "a=setup:passive" in endpoint.offers[0]
    assert "a=setup:active" in endpoint.answers[0]
    assert endpoint.dtls_states[:2] == ["connecting", "connected"]
    assert endpoint.video_frames >= 60, (endpoint.video_frames, output)
    assert endpoint.audio_frames >= 100
    # the publisher's certificate really is P-224: the reason the compat backend exists
    assert peer_certs and P224_OID in peer_certs[0]


async def test_plain_aiortc_answerer_fails() -> None:
    endpoint = await publish(loopback_pc, seconds=1)
    assert endpoint.publisher_rc != 0  # type: ignore[attr-defined]
    assert "A TLS fatal alert has been received" in endpoint.publisher_output  # type: ignore[attr-defined]
    assert endpoint.dtls_states == ["connecting", "failed"]
    assert endpoint.video_frames == 0


@pytest.mark.parametrize("compat_side", ["offerer", "answerer", "both"])
async def test_compat_backend_between_aiortc_peers(compat_side: str) -> None:
    """The compat backend as DTLS client and server, with SRTP media and SCTP data."""
    from aiortc.mediastreams import AudioStreamTrack

    a, b = loopback_pc(), loopback_pc()
    if compat_side in ("offerer", "both"):
        assert dtls.configure_peer_connection(a, mode="always")
    if compat_side in ("answerer", "both"):
        assert dtls.configure_peer_connection(b, mode="always")
    received = asyncio.get_running_loop().create_future()
    frames = 0
    tasks: list[asyncio.Future[None]] = []

    @b.on("datachannel")
    def on_channel(channel) -> None:  # type: ignore[no-untyped-def]
        channel.on("message", lambda msg: received.done() or received.set_result(msg))

    @b.on("track")
    def on_track(track) -> None:  # type: ignore[no-untyped-def]
        async def consume() -> None:
            nonlocal frames
            while True:
                await track.recv()
                frames += 1

        tasks.append(asyncio.ensure_future(consume()))

    a.addTrack(AudioStreamTrack())
    channel = a.createDataChannel("chat")
    channel.on("open", lambda: channel.send("hello"))
    try:
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        assert await asyncio.wait_for(received, 10) == "hello"
        for _ in range(50):
            if frames >= 5:
                break
            await asyncio.sleep(0.1)
        assert frames >= 5
        transports: set[RTCDtlsTransport] = {t.receiver.transport for t in b.getTransceivers()}
        ssl_types = {type(t._ssl).__name__ for t in transports}
        expect = "Connection" if compat_side == "offerer" else "_CompatConnection"
        assert ssl_types == {expect}
    finally:
        await a.close()
        await b.close()
        for task in tasks:
            task.cancel()


def test_auto_mode_detects_ffmpeg_offers() -> None:
    assert dtls.needs_compat("v=0\r\no=FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1\r\n")
    assert not dtls.needs_compat("v=0\r\no=- 4004319699 4004319699 IN IP4 0.0.0.0\r\n")
