"""Host management domain logic: identity, status, library, session control and the stores
behind pairing. No Quart imports; routes call this and render."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway import __version__
from gateway.db import Database
from gateway.host import compositors, hostinfo, steam
from gateway.host.capture import StatsRecorder
from gateway.host.framesize import FrameSizes
from gateway.host.models import (
    HostCustomGame,
    HostNativeClient,
    HostPairedClient,
    HostPendingDevice,
    HostSetting,
)
from gateway.host.schemas import ABI_VERSION, CustomInput
from gateway.settings import Settings
from media import MediaCore, UnknownTrack

log = logging.getLogger("mediagate.host")

PENDING_TTL = timedelta(minutes=10)
MAX_PENDING = 100
STREAM_CODECS = {"video/h264": "h264", "video/h265": "h265", "video/av1": "av1"}
RTP_PAYLOAD_BYTES = 1300  # aiortc's RTP packet budget for forwarded video


def host_version() -> str:
    return __version__


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class NotFound(Exception):
    pass


class HostStore:
    """Everything about pairing and the library that replicas share."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def uniqueid(self) -> str:
        """The host's stable id, created once; a replica that loses the race reads the
        winner's."""
        async with self.db.session() as session:
            row = await session.get(HostSetting, "uniqueid")
            if row is not None:
                return row.value
        try:
            async with self.db.session() as session:
                value = uuid.uuid4().hex.upper()[:16]
                session.add(HostSetting(key="uniqueid", value=value))
            return value
        except IntegrityError:
            async with self.db.session() as session:
                row = await session.get(HostSetting, "uniqueid")
                assert row is not None
                return row.value

    # -- GameStream clients -------------------------------------------------------------

    async def paired_clients(self) -> list[HostPairedClient]:
        async with self.db.session() as session:
            rows = await session.scalars(select(HostPairedClient).order_by(
                HostPairedClient.paired_at))
            return list(rows)

    async def paired_client(self, fingerprint: str) -> HostPairedClient | None:
        async with self.db.session() as session:
            return await session.get(HostPairedClient, fingerprint)

    async def pin_client(self, row: HostPairedClient) -> None:
        async with self.db.session() as session:
            await session.merge(row)

    async def unpair_client(self, fingerprint: str) -> bool:
        async with self.db.session() as session:
            result = await session.execute(
                delete(HostPairedClient).where(HostPairedClient.fingerprint == fingerprint))
            return bool(result.rowcount)

    # -- native clients and pending devices ---------------------------------------------

    async def native_clients(self) -> list[HostNativeClient]:
        async with self.db.session() as session:
            rows = await session.scalars(select(HostNativeClient).order_by(
                HostNativeClient.paired_at))
            return list(rows)

    async def native_client(self, fingerprint: str) -> HostNativeClient | None:
        async with self.db.session() as session:
            return await session.get(HostNativeClient, fingerprint)

    async def pin_native(self, fingerprint: str, name: str) -> HostNativeClient:
        async with self.db.session() as session:
            row = await session.get(HostNativeClient, fingerprint)
            if row is None:
                row = HostNativeClient(fingerprint=fingerprint, name=name, paired_at=_now())
                session.add(row)
            else:
                row.name = name
            await session.execute(
                delete(HostPendingDevice).where(HostPendingDevice.fingerprint == fingerprint))
            return row

    async def unpair_native(self, fingerprint: str) -> bool:
        async with self.db.session() as session:
            result = await session.execute(
                delete(HostNativeClient).where(HostNativeClient.fingerprint == fingerprint))
            return bool(result.rowcount)

    async def knock(self, fingerprint: str, name: str) -> HostPendingDevice:
        async with self.db.session() as session:
            row = await session.scalar(select(HostPendingDevice).where(
                HostPendingDevice.fingerprint == fingerprint))
            if row is None:
                # bounded: the oldest knocks make room (they would expire anyway)
                ids = list(await session.scalars(select(HostPendingDevice.id).order_by(
                    HostPendingDevice.last_seen.desc()).offset(MAX_PENDING - 1)))
                if ids:
                    await session.execute(
                        delete(HostPendingDevice).where(HostPendingDevice.id.in_(ids)))
                row = HostPendingDevice(fingerprint=fingerprint, name=name, last_seen=_now())
                session.add(row)
            else:
                row.name, row.last_seen = name, _now()
            await session.flush()
            return row

    async def pending(self) -> list[HostPendingDevice]:
        cutoff = _now() - PENDING_TTL
        async with self.db.session() as session:
            await session.execute(
                delete(HostPendingDevice).where(HostPendingDevice.last_seen < cutoff))
            rows = await session.scalars(select(HostPendingDevice).order_by(HostPendingDevice.id))
            return list(rows)

    async def pending_device(self, pending_id: int) -> HostPendingDevice | None:
        async with self.db.session() as session:
            row = await session.get(HostPendingDevice, pending_id)
            if row is None or _aware(row.last_seen) < _now() - PENDING_TTL:
                return None
            return row

    async def approve(self, pending_id: int, name: str | None) -> HostNativeClient:
        device = await self.pending_device(pending_id)
        if device is None:
            raise NotFound("no pending request with that id")
        return await self.pin_native(device.fingerprint, name or device.name)

    async def deny(self, pending_id: int) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(HostPendingDevice).where(HostPendingDevice.id == pending_id))
            if not result.rowcount:
                raise NotFound("no pending request with that id")

    # -- custom library -----------------------------------------------------------------

    async def custom_games(self) -> list[HostCustomGame]:
        async with self.db.session() as session:
            return list(await session.scalars(select(HostCustomGame)))

    async def create_custom(self, data: CustomInput) -> HostCustomGame:
        row = HostCustomGame(id=secrets.token_hex(8), title=data.title, art=data.art,
                             launch=data.launch, created_at=_now())
        async with self.db.session() as session:
            session.add(row)
        return row

    async def update_custom(self, game_id: str, data: CustomInput) -> HostCustomGame:
        async with self.db.session() as session:
            row = await session.get(HostCustomGame, game_id) if len(game_id) <= 32 else None
            if row is None:
                raise NotFound("no custom entry with that id")
            row.title, row.art, row.launch = data.title, data.art, data.launch
            return row

    async def delete_custom(self, game_id: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(HostCustomGame).where(HostCustomGame.id == game_id[:64]))
            if not result.rowcount:
                raise NotFound("no custom entry with that id")


def custom_entry(row: HostCustomGame) -> dict[str, Any]:
    return {"id": row.id, "title": row.title, "art": dict(row.art), "launch": row.launch}


def game_entry(row: HostCustomGame) -> dict[str, Any]:
    return {"id": f"custom:{row.id}", "store": "custom", "title": row.title,
            "art": dict(row.art), "launch": row.launch}


def paired_client_body(row: HostPairedClient) -> dict[str, Any]:
    return {"fingerprint": row.fingerprint, "subject": row.subject,
            "not_before_unix": row.not_before_unix, "not_after_unix": row.not_after_unix}


def native_client_body(row: HostNativeClient) -> dict[str, Any]:
    return {"name": row.name, "fingerprint": row.fingerprint}


def pending_body(row: HostPendingDevice) -> dict[str, Any]:
    age = (_now() - _aware(row.last_seen)).total_seconds()
    return {"id": row.id, "name": row.name, "fingerprint": row.fingerprint,
            "age_secs": max(0, int(age))}


class HostService:
    """Per-app host state: created by the ApiMount start hook."""

    def __init__(self, settings: Settings, db: Database, media: MediaCore,
                 token: str | None) -> None:
        self.settings = settings
        self.media = media
        self.token = token
        self.store = HostStore(db)
        self.data_dir = Path(settings.data_dir) / "host"
        self.sizes = FrameSizes(media)
        self.recorder = StatsRecorder(media, self.data_dir / "captures",
                                      settings.stats_capture_period, self.sizes.size_of)
        self.codecs: list[str] = []
        self.uniqueid = ""
        self.pairing: Any = None  # GameStreamPairing, set by start()
        self.native: Any = None  # NativePairing, set by start()
        self.devices: Any = None  # DeviceServer, when the GameStream ports are enabled

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.uniqueid = await self.store.uniqueid()
        self.codecs = await asyncio.to_thread(hostinfo.detect_codecs)

    async def stop(self) -> None:
        await self.recorder.close()
        await self.sizes.close()

    # -- host ---------------------------------------------------------------------------

    def host_info(self) -> dict[str, Any]:
        return {
            "hostname": hostinfo.hostname(),
            "uniqueid": self.uniqueid,
            "local_ip": hostinfo.local_ip(self.settings),
            "version": host_version(),
            "abi_version": ABI_VERSION,
            "app_version": hostinfo.APP_VERSION,
            "gfe_version": hostinfo.GFE_VERSION,
            "codecs": list(self.codecs),
            "ports": hostinfo.port_map(self.settings),
        }

    def compositors(self) -> list[dict[str, object]]:
        return [c.as_dict() for c in compositors.detect(os.environ)]

    def _active(self, kind: str) -> list[str]:
        return [t.track_id for t in self.media.list_tracks()
                if t.kind == kind and self.media.track_started(t.track_id)]

    async def status(self) -> dict[str, Any]:
        video = self._active("video")
        audio = self._active("audio")
        session = stream = None
        if video:
            info = self.media.get_track(video[0])
            track_stats = self.media.stats().tracks.get(video[0])
            width, height = self.sizes.size_of(video[0])
            fps = round(track_stats.fps) if track_stats else 0
            session = {"width": width, "height": height, "fps": fps}
            codec = STREAM_CODECS.get(info.codec.lower()) if info else None
            if codec is not None:
                bitrate = int(track_stats.bitrate_bps / 1000) if track_stats else 0
                stream = {"width": width, "height": height, "fps": fps,
                          "bitrate_kbps": bitrate, "packet_size": RTP_PAYLOAD_BYTES,
                          "min_fec": 0, "codec": codec}
        paired = len(await self.store.paired_clients())
        return {
            "video_streaming": bool(video),
            "audio_streaming": bool(audio),
            "session": session,
            "stream": stream,
            "pin_pending": bool(self.pairing and self.pairing.pin_pending),
            "paired_clients": paired,
        }

    # -- library ------------------------------------------------------------------------

    async def library(self) -> list[dict[str, Any]]:
        root = steam.find_root(self.settings.steam_root)
        games = await asyncio.to_thread(steam.scan, root)
        games += [game_entry(row) for row in await self.store.custom_games()]
        games.sort(key=lambda g: (g["title"].casefold(), g["id"]))
        return games

    # -- session control ----------------------------------------------------------------

    async def stop_sessions(self) -> int:
        peers: Sequence[Any] = list(self.media.peers.values())
        await asyncio.gather(*(peer.close("stopped by the host operator") for peer in peers),
                             return_exceptions=True)
        return len(peers)

    def request_idr(self) -> int:
        requested = 0
        for track_id in self._active("video"):
            try:
                self.media.request_keyframe(track_id)
                requested += 1
            except UnknownTrack:
                continue
        return requested
