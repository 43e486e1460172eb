"""The app's one MediaCore, configured from the settings, and what every API applies when
it creates media sessions from client input: the SDP limits and the pending-peer caps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiortc import RTCIceServer

from gateway.clientip import request_client_ip
from gateway.errors import ApiError
from gateway.settings import Settings
from media import MediaConfig, MediaCore, PeerLimitReached
from media.network import NetworkConfig, peer_factory
from media.sdplimits import SdpLimits

# The shape of client SDP each API accepts (media/sdplimits.py): WHIP/WHEP and Studio WHIP
# carry a few tracks; a Calls session renegotiates up to 64 tracks on one connection.
WHIP_SDP_LIMITS = SdpLimits(max_sections=16, max_lines=1024)
CALLS_SDP_LIMITS = SdpLimits(max_sections=64, max_lines=8192, max_codecs=1024,
                             max_candidates=256)


def ice_servers(settings: Settings) -> list[RTCIceServer]:
    servers: list[RTCIceServer] = []
    if settings.stun_urls:
        servers.append(RTCIceServer(urls=list(settings.stun_urls)))
    if settings.turn_urls:
        servers.append(
            RTCIceServer(
                urls=list(settings.turn_urls),
                username=settings.turn_username,
                credential=settings.turn_password.get_secret_value()
                if settings.turn_password else None,
            )
        )
    return servers


def network_config(settings: Settings) -> NetworkConfig:
    low, high = settings.ice_port_range or (None, None)
    return NetworkConfig(
        port_min=low,
        port_max=high,
        public_ips=list(settings.public_ips),
        allowed_ips=list(settings.ice_allowed_ips) or None,
    )


def create_media_core(settings: Settings) -> MediaCore:
    return MediaCore(MediaConfig(
        ice_servers=ice_servers(settings),
        peer_factory=peer_factory(network_config(settings)),
        sdp_limits=CALLS_SDP_LIMITS,  # the widest; WHIP-style APIs pass WHIP_SDP_LIMITS
        connect_timeout=settings.peer_connect_timeout,
        max_pending_per_client=settings.max_pending_peers_per_ip,
        max_pending_peers=settings.max_pending_peers,
    ))


@contextlib.contextmanager
def peer_admission() -> Iterator[None]:
    """Wrap the call that creates a media session for the current request: its peers count
    against the client address's pending peers, and a cap refuses with 429 (this address)
    or 503 (the server), with Retry-After, in the API's own error shape."""
    from gateway.state import gateway_state

    try:
        with gateway_state().media.acting_for(request_client_ip()):
            yield
    except PeerLimitReached as exc:
        status = 429 if exc.scope == "client" else 503
        raise ApiError(status, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
