"""Every use of aiortc/aioice ICE internals by the media core lives here (trickle routing
and ICE restart, as WHIP/WHEP `PATCH` needs them).

aiortc has no `restartIce()`. A restart that keeps the gathered candidates is the
credential swap RFC 8445 describes: new local ufrag/pwd, the remote's new ones, same
sockets; aioice checks every STUN request against these attributes, so changing them on
the live aioice ``Connection`` (``RTCIceTransport._connection``) is the whole restart.
aiortc hands a trickled candidate only to the transceiver that owns a transport (not
``_bundled``). ``check_internals()`` (run by tests/media/test_ice.py) fails loudly when
an upgrade changes any of this.
"""

from __future__ import annotations

import inspect
import secrets
import string

import aioice
import aiortc
from aioice import Connection
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcicetransport import RTCIceTransport

_ICE_CHARS = string.ascii_letters + string.digits + "+/"


def ice_string(length: int) -> str:
    """A random ICE ufrag/pwd of `length` ice-chars (RFC 8839)."""
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(length))


def bundle_owner(pc: RTCPeerConnection) -> tuple[str, str | None]:
    """(kind, mid) of the first m-line that owns a transport (the others are bundled on it)."""
    for transceiver in pc.getTransceivers():
        if transceiver.mid is not None and not transceiver._bundled:
            return transceiver.kind, transceiver.mid
    sctp = pc.sctp
    if sctp is not None and sctp.mid is not None and not sctp._bundled:
        return "application", sctp.mid
    return "audio", None


def route_mid(pc: RTCPeerConnection, mid: str | None) -> str | None:
    """The mid to give a remote candidate so aiortc uses it: `mid` if that m-line owns a
    transport, else the bundle owner's (aiortc drops candidates for bundled m-lines)."""
    owners = {t.mid for t in pc.getTransceivers() if t.mid is not None and not t._bundled}
    sctp = pc.sctp
    if sctp is not None and sctp.mid is not None and not sctp._bundled:
        owners.add(sctp.mid)
    if mid in owners:
        return mid
    return bundle_owner(pc)[1] or mid


def ice_transports(pc: RTCPeerConnection) -> list[RTCIceTransport]:
    found: list[RTCIceTransport] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is not None and dtls.transport not in found:
            found.append(dtls.transport)
    return found


def connection(transport: RTCIceTransport) -> Connection:
    """The aioice agent behind an aiortc ICE transport."""
    return transport._connection


def remote_ufrag(pc: RTCPeerConnection) -> str | None:
    """The remote ufrag the ICE agent currently checks against (changes on a restart)."""
    transports = ice_transports(pc)
    return connection(transports[0]).remote_username if transports else None


def set_credentials(
    pc: RTCPeerConnection,
    *,
    local: tuple[str, str] | None = None,
    remote: tuple[str, str] | None = None,
) -> None:
    """Swap the (ufrag, pwd) pairs every ICE agent of `pc` uses, keeping its sockets."""
    for transport in ice_transports(pc):
        agent = connection(transport)
        if remote is not None:
            agent.remote_username, agent.remote_password = remote
        if local is not None:
            agent._local_username, agent._local_password = local


def check_internals() -> None:
    """Raise if the aiortc/aioice internals this module relies on have changed."""
    if not aioice.__version__.startswith("0.13."):
        raise RuntimeError(f"media.ice is pinned to aioice 0.13.x, found {aioice.__version__}")
    if not aiortc.__version__.startswith("1.16."):
        raise RuntimeError(f"media.ice is pinned to aiortc 1.16.x, found {aiortc.__version__}")
    init = inspect.getsource(Connection.__init__)
    for needle in (
        "self._local_username = local_username",
        "self._local_password = local_password",
        "self.remote_username:",
        "self.remote_password:",
    ):
        if needle not in init:
            raise RuntimeError(f"aioice Connection.__init__ no longer has {needle!r}")
    if "return self._local_username" not in inspect.getsource(Connection.local_username.fget):  # type: ignore[attr-defined]
        raise RuntimeError("aioice Connection.local_username no longer reads _local_username")
    if "self._connection = gatherer._connection" not in inspect.getsource(RTCIceTransport):
        raise RuntimeError("aiortc RTCIceTransport no longer keeps the aioice _connection")
    add = inspect.getsource(RTCPeerConnection.addIceCandidate)
    if "not transceiver._bundled" not in add:
        raise RuntimeError("aiortc addIceCandidate no longer skips _bundled transceivers")
    if "not self.__sctp._bundled" not in add:
        raise RuntimeError("aiortc addIceCandidate no longer skips a _bundled SCTP transport")
    if "self._bundled = False" not in inspect.getsource(RTCRtpTransceiver.__init__):
        raise RuntimeError("aiortc RTCRtpTransceiver._bundled is gone")
