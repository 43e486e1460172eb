"""PyAV's FFmpeg WHIP muxer publishing H.264 + Opus into the MediaCore itself, forwarded to
three aiortc viewers: the frames they get are the ones the core received, and nothing in the
gateway's process decodes video."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from media_clients import Captured, Subscriber, decode_numbers, wait_for
from test_forwarding import assert_contiguous_run, collect

from media import MediaConfig, MediaCore, hook
from media.network import NetworkConfig, peer_factory
from tests.media.helpers_whip import WhipEndpoint
from tests.media.test_whip_muxer import HELPER, ROOT

pytestmark = pytest.mark.usefixtures("loopback_ice")
LOOPBACK = NetworkConfig(loopback=True, allowed_ips=["127.0.0.1"])


class CoreWhipEndpoint(WhipEndpoint):
    """The same tiny WHIP endpoint, answered by a MediaCore peer that publishes the tracks."""

    def __init__(self, core: MediaCore) -> None:
        super().__init__(lambda: None)  # type: ignore[arg-type,return-value]
        self.core = core

    async def _answer(self, offer_sdp: str) -> str:
        self.offers.append(offer_sdp)
        peer = await self.core.create_peer()
        answer = await peer.accept_offer(offer_sdp, publish_prefix="whip/muxer")
        self.answers.append(answer)
        return answer


async def test_whip_muxer_h264_is_forwarded_without_decoding() -> None:
    # the gateway's own peer factory: network policy + the DTLS fix the muxer needs
    core = MediaCore(MediaConfig(peer_factory=peer_factory(LOOPBACK)))
    await core.start()
    endpoint = CoreWhipEndpoint(core)
    await endpoint.start()
    viewers = [Subscriber() for _ in range(3)]
    muxer = await asyncio.create_subprocess_exec(
        sys.executable, str(HELPER), endpoint.url, "8", "handshake_timeout=8000",
        "loglevel=16", env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        with hook.count_decodes() as decodes:
            await wait_for(lambda: len(core.list_tracks("whip/muxer/")) == 2, 20)
            infos = {t.kind: t for t in core.list_tracks("whip/muxer/")}
            assert infos["video"].codec == "video/H264"
            assert infos["audio"].codec == "audio/opus"
            await wait_for(lambda: core.track_started(infos["video"].track_id), 20)
            reference: dict[str, list[Captured]] = {"audio": [], "video": []}
            taps = {kind: core.tap(info.track_id) for kind, info in infos.items()}
            collectors = [asyncio.create_task(collect(taps[k], reference[k])) for k in taps]
            for viewer in viewers:
                await viewer.play(await core.create_peer(),
                                  [infos["audio"].track_id, infos["video"].track_id])
            await wait_for(
                lambda: all(len(v.capture("video").frames) >= 45 for v in viewers), 20)
            for viewer in viewers:
                await viewer.close()
            for tap in taps.values():
                tap.close()
            await asyncio.gather(*collectors)
        output, _ = await asyncio.wait_for(muxer.communicate(), 40)
        assert muxer.returncode == 0, output.decode(errors="replace")
    finally:
        if muxer.returncode is None:
            muxer.kill()
            await muxer.wait()
        for viewer in viewers:
            await viewer.close()
        await endpoint.close()
        await core.stop()

    assert "a=setup:passive" in endpoint.offers[0]
    for viewer in viewers:
        video = viewer.capture("video").frames
        assert {f.mime for f in video} == {"video/H264"}
        assert_contiguous_run(video, reference["video"])
        assert len(viewer.capture("audio").frames) >= 40
        assert_contiguous_run(viewer.capture("audio").frames, reference["audio"])
        assert len(decode_numbers(video)) >= 40  # decodable H.264 at the viewer
    assert decodes.video == 0 and decodes.video_decoders == 0, decodes.counts
