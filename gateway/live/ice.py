"""Trickle ICE and ICE restart on a media-core peer (what WHIP/WHEP `PATCH` does).

aiortc has no `restartIce()`. A restart that keeps the gathered candidates is the
credential swap RFC 8445 describes: new local ufrag/pwd, the remote's new ones, same
sockets; aioice checks every STUN request against these attributes, so changing them
on the live aioice connection is the whole restart. Pinned to aiortc 1.16 / aioice 0.13.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from aiortc import RTCIceCandidate, RTCPeerConnection
from aiortc.rtcicetransport import RTCIceTransport, candidate_from_aioice

_ICE_CHARS = string.ascii_letters + string.digits + "+/"


def _ice_string(length: int) -> str:
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(length))


def _bundle_master(pc: RTCPeerConnection) -> tuple[str, str | None]:
    """(kind, mid) of the first m-line that owns a transport."""
    for transceiver in pc.getTransceivers():
        if transceiver.mid is not None and not transceiver._bundled:
            return transceiver.kind, transceiver.mid
    return "audio", None


def ice_transports(pc: RTCPeerConnection) -> list[RTCIceTransport]:
    found: list[RTCIceTransport] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is not None and dtls.transport not in found:
            found.append(dtls.transport)
    return found


def remote_ufrag(pc: RTCPeerConnection) -> str | None:
    transports = ice_transports(pc)
    return transports[0]._connection.remote_username if transports else None


async def add_remote_candidates(pc: RTCPeerConnection, candidates: list[RTCIceCandidate],
                                end_of_candidates: bool) -> None:
    owners = {t.mid for t in pc.getTransceivers() if t.mid is not None and not t._bundled}
    _, master = _bundle_master(pc)
    for candidate in candidates:
        if candidate.sdpMid not in owners:
            candidate.sdpMid = master
        candidate.sdpMLineIndex = None
        if candidate.sdpMid is not None:
            await pc.addIceCandidate(candidate)
    if end_of_candidates:
        await pc.addIceCandidate(None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Restarted:
    ufrag: str
    pwd: str
    kind: str
    mid: str | None
    candidates: list[RTCIceCandidate]


def restart_ice(pc: RTCPeerConnection, remote_ufrag: str, remote_pwd: str) -> Restarted:
    ufrag, pwd = _ice_string(8), _ice_string(24)
    candidates: list[RTCIceCandidate] = []
    for transport in ice_transports(pc):
        connection = transport._connection
        connection.remote_username = remote_ufrag
        connection.remote_password = remote_pwd
        connection._local_username = ufrag
        connection._local_password = pwd
        candidates += [candidate_from_aioice(c) for c in connection.local_candidates]
    kind, mid = _bundle_master(pc)
    return Restarted(ufrag, pwd, kind, mid, candidates)
