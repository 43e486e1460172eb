"""RFC 9725 PATCH on the session resource: trickled candidates and an ICE restart, in-process
so the gateway's ICE agent can be inspected."""

from __future__ import annotations

import re

from aiortc import RTCSessionDescription
from quart import Quart
from quart.testing import QuartClient

from gateway.live.service import LiveService
from gateway.state import EXTENSION
from media import ice
from tests import contract
from tests.live.helpers import candidates_of, strip_candidates
from tests.media.media_clients import Publisher, Subscriber, wait_for

FRAG = {"Content-Type": "application/trickle-ice-sdpfrag"}


async def call(client: QuartClient, method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
    response = await client.open(path, method=method, **kwargs)  # type: ignore[arg-type]
    body = await response.get_data()
    contract.check("live", method, path, response, body)
    return response, body.decode()


def fragment(ufrag: str, pwd: str, mid: str, candidates: list[str], end: bool = True) -> str:
    lines = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", "m=audio 9 UDP/TLS/RTP/SAVPF 0",
             f"a=mid:{mid}"] + [f"a={c}" for c in candidates]
    if end:
        lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


def attribute(sdp: str, name: str) -> str:
    match = re.search(rf"^a={name}:(\S+)", sdp, re.M)
    assert match, name
    return match.group(1)


async def test_trickle_then_ice_restart(app: Quart, client: QuartClient) -> None:
    live: LiveService = app.extensions[EXTENSION].services["live"]
    publisher, viewer = Publisher(), Subscriber(kinds=("video",))
    try:
        pc = publisher.pc
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        # a trickling client: the offer carries no candidates, PATCHes send them
        response, answer = await call(client, "POST", "/api/whip/publish/trickle",
                                      data=strip_candidates(offer),
                                      headers={"Content-Type": "application/sdp"})
        assert response.status_code == 201
        location, etag = response.headers["Location"], response.headers["ETag"]
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

        ufrag, pwd = attribute(offer, "ice-ufrag"), attribute(offer, "ice-pwd")
        mid = attribute(offer, "mid")
        body = fragment(ufrag, pwd, mid, candidates_of(offer))

        response, _ = await call(client, "PATCH", location, data=body,
                                 headers={**FRAG, "If-Match": '"stale"'})
        assert response.status_code == 412
        response, _ = await call(client, "PATCH", location, data=body,
                                 headers={"Content-Type": "application/sdp"})
        assert response.status_code == 415
        response, text = await call(client, "PATCH", location, data="hello", headers=FRAG)
        assert response.status_code == 400 and "invalid SDP fragment" in text

        response, _ = await call(client, "PATCH", location, data=body,
                                 headers={**FRAG, "If-Match": etag})
        assert response.status_code == 204 and response.headers["ETag"] == etag
        session = live.session("trickle", location.rsplit("/", 1)[1], "publisher")
        gateway_ice = ice.connection(ice.ice_transports(session.peer.pc)[0])
        remote = {(c.host, c.port) for c in gateway_ice.remote_candidates}
        trickled = {(c.split()[4], int(c.split()[5])) for c in candidates_of(offer)}
        assert trickled and trickled <= remote
        await wait_for(lambda: pc.connectionState == "connected", 15)

        # ICE restart: new credentials on both sides, same sockets, media keeps flowing
        new_ufrag, new_pwd = "rstrt1", "restartpassword123456789"
        ice.set_credentials(pc, local=(new_ufrag, new_pwd))
        response, text = await call(
            client, "PATCH", location, data=fragment(new_ufrag, new_pwd, mid, []),
            headers={**FRAG, "If-Match": "*"})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/trickle-ice-sdpfrag"
        assert response.headers["ETag"] != etag
        server_ufrag, server_pwd = attribute(text, "ice-ufrag"), attribute(text, "ice-pwd")
        assert server_ufrag != attribute(answer, "ice-ufrag")
        assert set(candidates_of(text)) == set(candidates_of(answer))
        assert "a=end-of-candidates" in text
        ice.set_credentials(pc, remote=(server_ufrag, server_pwd))
        assert gateway_ice.remote_username == new_ufrag
        assert gateway_ice.local_username == server_ufrag

        # the old ETag no longer matches
        response, _ = await call(client, "PATCH", location, data=body,
                                 headers={**FRAG, "If-Match": etag})
        assert response.status_code == 412

        await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
        viewer.hook_receivers()
        response, viewer_answer = await call(client, "POST", "/api/whep/play/trickle",
                                             data=viewer.pc.localDescription.sdp)
        assert response.status_code == 201
        await viewer.pc.setRemoteDescription(RTCSessionDescription(viewer_answer, "answer"))
        viewer.hook_receivers()
        await wait_for(lambda: len(viewer.capture("video").frames) >= 20, 20)
        assert pc.connectionState == "connected"

        response, _ = await call(client, "DELETE", location)
        assert response.status_code == 200
        response, _ = await call(client, "PATCH", location, data=body, headers=FRAG)
        assert response.status_code == 404
    finally:
        await publisher.close()
        await viewer.close()
