"""media.dtls against remote certificates like GStreamer's (RSA-2048) and ECDSA P-256/P-384,
with the gateway's peer as DTLS client and as server, between two aiortc peers in-process;
and the log line a failed handshake leaves.

GStreamer's ``dtlsdec`` presents a self-signed RSA certificate. aiortc alone offers only
ECDHE-ECDSA suites, so as the DTLS client (its answer to an ``actpass`` offer is
``setup:active``) it reaches no RSA server: ``test_plain_aiortc_client_cannot_reach_an_rsa_server``
keeps that evidence executable (tests/live/test_gstreamer.py has the real GStreamer).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdtlstransport import RTCCertificate, generate_certificate
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from media import dtls
from media.network import (
    NetworkConfig,
    apply_network_config,
    create_peer_connection,
    make_configuration,
)

LOOPBACK = NetworkConfig(loopback=True, allowed_ips=["127.0.0.1"])
KEYS: dict[str, Callable[[], Any]] = {
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "p-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p-384": lambda: ec.generate_private_key(ec.SECP384R1()),
}


def remote_peer(key_name: str, *, interop: bool = True) -> RTCPeerConnection:
    """The other stack: an aiortc peer with a certificate of the given key type. With
    `interop` its contexts get media.dtls's suites too (an RSA DTLS *server* needs ECDHE-RSA
    itself; GStreamer's OpenSSL offers them)."""
    pc = RTCPeerConnection(make_configuration([]))
    apply_network_config(pc, LOOPBACK)
    key = KEYS[key_name]()
    # aiortc has no API for a caller's certificate: swap the generated one before use
    pc._RTCPeerConnection__certificates = [  # type: ignore[attr-defined]
        RTCCertificate(key=key, cert=generate_certificate(key))
    ]
    if interop:
        dtls.configure_peer_connection(pc, mode="never")
    return pc


def gateway_peer() -> RTCPeerConnection:
    """Built like the gateway's peers (media.network.peer_factory)."""
    return create_peer_connection(LOOPBACK, [])


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection,
                    setup: str = "actpass", edit: Callable[[str], str] = str) -> str:
    """`offerer` offers a data channel with `a=setup:<setup>` (and `edit` applied on the
    way); returns the answer SDP."""
    channel = offerer.createDataChannel("interop")
    channel.on("open", lambda: channel.send("hello"))
    await offerer.setLocalDescription(await offerer.createOffer())
    offer = offerer.localDescription.sdp.replace("a=setup:actpass", f"a=setup:{setup}")
    offer = edit(offer)
    await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    return answerer.localDescription.sdp


async def settled(pc: RTCPeerConnection, within: float = 15) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while pc.connectionState not in ("connected", "failed", "closed"):
        assert asyncio.get_running_loop().time() < deadline, pc.connectionState
        await asyncio.sleep(0.05)
    return pc.connectionState


@pytest.mark.parametrize("our_role", ["client", "server"])
@pytest.mark.parametrize("key_name", sorted(KEYS))
async def test_remote_certificates_in_both_roles(key_name: str, our_role: str) -> None:
    remote, ours = remote_peer(key_name), gateway_peer()
    received = asyncio.get_running_loop().create_future()
    ours.on("datachannel", lambda ch: ch.on(
        "message", lambda m: received.done() or received.set_result(m)))
    try:
        # RFC 8842: actpass is answered active (we are the client); active with passive
        setup = "actpass" if our_role == "client" else "active"
        answer = await negotiate(remote, ours, setup)
        assert f"a=setup:{'active' if our_role == 'client' else 'passive'}" in answer
        assert await settled(ours) == "connected"
        assert await asyncio.wait_for(received, 10) == "hello"
        assert ours.sctp is not None
        transport = ours.sctp.transport
        assert transport._role == our_role
        peer_key = transport._ssl.get_peer_certificate(as_cryptography=True).public_key()
        assert isinstance(peer_key, rsa.RSAPublicKey if key_name == "rsa-2048"
                          else ec.EllipticCurvePublicKey)
        # the suite follows the server's certificate; ours stays ECDSA P-256
        server_is_rsa = our_role == "client" and key_name == "rsa-2048"
        cipher = transport._ssl.get_cipher_name()
        assert cipher.startswith("ECDHE-RSA-" if server_is_rsa else "ECDHE-ECDSA-"), cipher
        own = ours._RTCPeerConnection__certificates[0]._cert.public_key()  # type: ignore[attr-defined]
        assert isinstance(own, ec.EllipticCurvePublicKey) and own.curve.name == "secp256r1"
    finally:
        await asyncio.gather(remote.close(), ours.close())


async def test_plain_aiortc_client_cannot_reach_an_rsa_server() -> None:
    remote = remote_peer("rsa-2048")
    plain = RTCPeerConnection(make_configuration([]))
    apply_network_config(plain, LOOPBACK)
    try:
        await negotiate(remote, plain)
        assert await settled(plain) == "failed"
    finally:
        await asyncio.gather(remote.close(), plain.close())


@pytest.mark.parametrize("case", ["no-shared-cipher", "fingerprint-mismatch"])
async def test_failed_handshake_is_logged(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="media.dtls")
    if case == "no-shared-cipher":
        # an RSA server that only accepts ECDSA suites: nothing to agree on
        remote = remote_peer("rsa-2048", interop=False)
        expected = (r"DTLS handshake failed as client \(remote candidates 127\.0\.0\.1:\d+\): "
                    r"error; received alert handshake_failure")
    else:
        remote = remote_peer("p-256")
        expected = r"DTLS handshake failed as client \(remote candidates .*\): fingerprint mismatch"
    ours = gateway_peer()

    def tamper(sdp: str) -> str:
        if case != "fingerprint-mismatch":
            return sdp
        # every fingerprint of the offer now names another certificate
        return re.sub(r"(a=fingerprint:\S+ )([0-9A-F])",
                      lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"), sdp)

    try:
        await negotiate(remote, ours, edit=tamper)
        assert await settled(ours) == "failed"
    finally:
        await asyncio.gather(remote.close(), ours.close())
    messages = [r.getMessage() for r in caplog.records if r.name == "media.dtls"]
    assert any(re.fullmatch(expected, m) for m in messages), messages


async def test_internals_pinned_on_live_objects() -> None:
    """What media.dtls swaps on a peer is really what aiortc uses (check_aiortc_internals
    reads aiortc's source; this looks at the objects)."""
    dtls.check_aiortc_internals()
    pc = gateway_peer()
    try:
        certificate = pc._RTCPeerConnection__certificates[0]  # type: ignore[attr-defined]
        assert isinstance(certificate, dtls.CompatCertificate)
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        transport = pc.getTransceivers()[0].receiver.transport
        assert "_RTCDtlsTransport__log_debug" in vars(transport)  # the failure reporter
        assert transport._RTCDtlsTransport__local_certificate is certificate  # type: ignore[attr-defined]
        context = certificate._create_ssl_context(transport._srtp_profiles)
        assert type(context).__name__ == "Context"  # pyOpenSSL's, now with CIPHERS
    finally:
        await pc.close()
