"""Recording of published room tracks (`RECORD_ENABLED=1`) through media-core taps.

One `media.recorder.Recorder` per track, named `{room}_{kind}{mid}_{unix}.{ext}` (as
upstream's `{room}_{trackID}_{unix}`): VP8/VP9 -> .ivf, Opus -> .ogg, H.264 -> .mp4.
A finished file is handed to the uploader when S3 upload is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from gateway.live.uploader import S3Uploader
from media import MediaCore, TrackInfo, UnknownTrack
from media.detach import spawn
from media.recorder import Recorder

log = logging.getLogger("mediagate.live.recording")

RECORDING_SUFFIXES = (".ivf", ".ogg", ".mp4")


class Recordings:
    def __init__(self, core: MediaCore, directory: Path, uploader: S3Uploader | None) -> None:
        self._core = core
        self.directory = directory
        self._uploader = uploader
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.finished: list[Path] = []

    def start(self, room: str, track: TrackInfo) -> None:
        if track.track_id in self._tasks:
            return
        task = spawn(self._record(room, track))
        self._tasks[track.track_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(track.track_id, None))

    async def _record(self, room: str, track: TrackInfo) -> None:
        try:
            tap = self._core.tap(track.track_id)
        except UnknownTrack:
            return
        recorder: Recorder | None = None
        try:
            async for frame in tap:
                if recorder is None:
                    # The writer thread starts with the first frame: a track that never
                    # receives media (an offer whose ICE never completes) costs no thread.
                    try:
                        recorder = await asyncio.to_thread(
                            Recorder, self.directory, room, f"{track.kind}{track.mid}",
                            track.codec, track.clock_rate,
                        )
                    except (ValueError, OSError) as exc:
                        log.warning("not recording %s: %s", track.track_id, exc)
                        return
                recorder.write(frame)
        finally:
            tap.close()
            if recorder is not None:
                await recorder.aclose()
        if recorder is None:
            return
        path = recorder.path
        if recorder.frames_written == 0:
            path.unlink(missing_ok=True)
            return
        self.finished.append(path)
        log.info("recorded %s (%d frames)", path.name, recorder.frames_written)
        if self._uploader is not None:
            await self._uploader.upload(path)

    async def wait(self, within: float = 15.0) -> None:
        """Let running recordings finish (their tracks have ended or are ending)."""
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=within)
            for task in pending:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
