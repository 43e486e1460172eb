"""The app's MediaCore gets the operator's WebRTC network settings."""

from __future__ import annotations

import re

from gateway.media_setup import create_media_core
from gateway.settings import Settings


async def test_ice_port_range_and_public_ip_reach_every_peer(tmp_path) -> None:
    settings = Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path),
        "MEDIAGATE_ICE_PORT_RANGE": "41500-41530",
        "MEDIAGATE_PUBLIC_IPS": "203.0.113.7",
    })
    core = create_media_core(settings)
    await core.start()
    try:
        assert core.config.ice_servers == []  # none configured: no public STUN fallback
        peer = await core.create_peer()
        peer.add_receiver("audio")
        offer = await peer.create_offer()
        host = re.findall(r"a=candidate:\S+ \d \S+ \d+ (\S+) (\d+) typ host", offer)
        assert host, offer
        # the IPv4 host address is advertised as the public one (IPv6 keeps its own)
        assert {address for address, _ in host if "." in address} == {"203.0.113.7"}
        assert all(41500 <= int(port) <= 41530 for _, port in host)
    finally:
        await core.stop()
