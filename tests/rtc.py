"""aiortc peers for the tests: loopback only.

`local_peer_connection()` without a configuration gathers through Google's public STUN server;
the tests never send traffic off this machine, so every test peer is built here.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection


def local_peer_connection() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))
