"""Trickle routing and ICE restart on a core Peer; fails loudly when the aiortc/aioice
internals media.ice relies on change."""

from __future__ import annotations

import re
import time

import aioice.ice
import pytest
from aiortc import RTCSessionDescription
from media_clients import Publisher, wait_for

from media import MediaCore, NegotiationError, ice

pytestmark = pytest.mark.usefixtures("loopback_ice")


def test_internals_pinned() -> None:
    ice.check_internals()


def without_candidates(sdp: str) -> str:
    lines = [line for line in sdp.splitlines()
             if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    return "\r\n".join(lines) + "\r\n"


async def test_trickle_to_a_bundled_mid_then_ice_restart(
    core: MediaCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.1)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    publisher = Publisher("video/VP8")  # audio (bundle owner) + video (bundled)
    peer = await core.create_peer()
    try:
        with pytest.raises(NegotiationError):  # nothing negotiated yet
            await peer.add_ice_candidate("candidate:1 1 udp 1 127.0.0.1 9 typ host", None)
        pc = publisher.pc
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        answer = await peer.accept_offer(without_candidates(offer), publish_prefix="live/ice")
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        bundled_mid = pc.getTransceivers()[1].mid
        for line in re.findall(r"^a=(candidate:.*?)\r?$", offer, re.M):
            await peer.add_ice_candidate(line, bundled_mid)  # aiortc alone would drop these
        await peer.add_ice_candidate("")
        await wait_for(lambda: peer.connected.is_set(), 10)
        assert peer.remote_ice_ufrag() == re.search(r"a=ice-ufrag:(\S+)", offer)[1]  # type: ignore[index]

        (video,) = [t for t in core.list_tracks("live/ice/") if t.kind == "video"]
        client_ufrag, client_pwd = "cl1ent", "clientrestartpassword123"
        ice.set_credentials(pc, local=(client_ufrag, client_pwd))
        restart = peer.restart_ice(client_ufrag, client_pwd)
        ice.set_credentials(pc, remote=(restart.ufrag, restart.pwd))
        assert peer.remote_ice_ufrag() == client_ufrag
        assert (restart.kind, restart.mid) == ("audio", pc.getTransceivers()[0].mid)
        assert len(restart.ufrag) == 8 and len(restart.pwd) == 24
        assert restart.ufrag != re.search(r"a=ice-ufrag:(\S+)", answer)[1]  # type: ignore[index]
        assert set(restart.candidates) == set(re.findall(r"^a=(candidate:.*?)\r?$", answer, re.M))
        agent = ice.connection(ice.ice_transports(peer.pc)[0])
        assert (agent.local_username, agent.remote_password) == (restart.ufrag, client_pwd)
        # consent checks (every 0.1 s here) now run on the new credentials: media keeps flowing
        restarted_at = time.monotonic()
        await wait_for(lambda: (core.last_frame_at(video.track_id) or 0) > restarted_at + 3, 10)
        assert pc.connectionState == "connected" and peer.connection_state == "connected"
        assert peer.connection_state == "connected"
    finally:
        await peer.close()
        await publisher.close()
