"""The media library: reserved assets, signed self-hosted upload URLs, storage and probing.

`POST /v1/media` reserves an `UPLOADING` asset and hands out a presigned PUT URL that points
at the gateway itself: `/v1/media/<id>/upload?expires=<unix>&signature=<hex>`, an HMAC over
the asset id, expiry, content type and size under a key derived from the instance secret.
The body streams to a private temporary file; only a complete upload of exactly `byteSize`
bytes is linked into place (atomically, once), so nothing half-written is ever visible.
PyAV then probes the file in a worker thread: the real streams decide `kind`, and anything
PyAV cannot read is `FAILED` with a reason (and its file removed).

With `STUDIO_MEDIA_STORAGE=s3` the URL is a boto3-presigned PUT to the `S3_*` bucket
instead; the gateway watches for the object (HEAD every second until the URL has expired),
checks its size and type, copies it under the data dir (where `media` sources play from)
and probes that copy.

No Quart here: routes hand over the parsed request and the body's chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from gateway.db import Database
from gateway.keys import InstanceSecret, secrets_equal
from gateway.s3 import make_s3_client
from gateway.settings import Settings
from gateway.studio.ids import new_id
from gateway.studio.models_part2 import StudioMediaAsset
from gateway.studio.service import (
    InvalidRequest,
    KeyedLocks,
    NotFound,
    Page,
    QuotaExceeded,
    check_quota,
)
from gateway.tasks import BackgroundTasks

log = logging.getLogger("mediagate.studio.media")

KINDS = ("video", "image", "audio")
ASSET_ID = re.compile(r"^med_[0-9a-f]{26}$")
CONTENT_TYPE = re.compile(r"^(video|image|audio)/[a-z0-9][a-z0-9.+-]{0,80}$")
WRITE_BUFFER = 1 << 20
OBJECT_DIR = "studio/media"
# Containers PyAV reports for still images (one frame, no timing).
IMAGE_FORMATS = frozenset({"image2", "image2pipe"})
S3_POLL_SECONDS = 1.0
S3_GRACE = 60  # seconds after the URL expires that a started upload may still land
NOT_YOURS = "url: none of your media-library assets has this id or objectKey"
"""The one answer for an asset that is another owner's, does not exist, or was never an
asset reference at all (a path): nothing tells them apart."""


@dataclass
class UploadRefused(Exception):
    """An upload the gateway will not take; `status` maps straight to HTTP."""

    status: int
    message: str
    code: str = "invalid_request"

    def __str__(self) -> str:
        return self.message


def normalize_content_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


@dataclass
class StudioLibrary:
    settings: Settings
    db: Database
    secret: InstanceSecret
    _tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    _receiving: set[str] = field(default_factory=set)
    _quota_lock: KeyedLocks = field(default_factory=KeyedLocks)

    def __post_init__(self) -> None:
        self._key = self.secret.derive("studio-media-upload")
        self.root = self.settings.data_dir.resolve()
        self._s3: Any = None

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = make_s3_client(self.settings)
        return self._s3

    @property
    def uses_s3(self) -> bool:
        return self.settings.studio_media_storage == "s3"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Probe complete uploads whose probe a previous process did not finish."""
        async with self.db.session() as session:
            pending = list((await session.execute(
                select(StudioMediaAsset).where(StudioMediaAsset.status == "UPLOADING")
            )).scalars())
        for asset in pending:
            if self.path(asset).is_file():
                self._spawn_probe(asset.id)
            elif not asset.object_key.startswith(OBJECT_DIR):
                created = _aware(asset.created_at).timestamp()
                self._spawn(self._watch_s3(asset.id, created + self.settings
                                           .studio_media_upload_ttl + S3_GRACE))

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def wait_idle(self) -> None:
        """Until every scheduled probe has finished (tests, graceful shutdown)."""
        await self._tasks.wait_idle()

    # -- assets ---------------------------------------------------------------------------

    def path(self, asset: StudioMediaAsset) -> Path:
        """The local file (for S3 assets: the copy that `media` sources play)."""
        return self.root / OBJECT_DIR / asset.id

    async def create_upload(self, owner: str, filename: str, content_type: str,
                            byte_size: int, folder: str | None,
                            ) -> tuple[StudioMediaAsset, str | None]:
        """The reserved asset and the signed query string of its upload URL on the gateway,
        or None with S3 storage (then `presigned_put` makes the URL)."""
        content_type = normalize_content_type(content_type)
        if not CONTENT_TYPE.fullmatch(content_type):
            raise InvalidRequest("contentType must be a video/*, image/* or audio/* type")
        if byte_size < 1:
            raise InvalidRequest("byteSize must be at least 1")
        limit = self.settings.studio_media_max_bytes
        if byte_size > limit:
            raise InvalidRequest(f"byteSize exceeds the maximum upload size ({limit} bytes)")
        if "/" in filename or "\\" in filename or filename in (".", ".."):
            raise InvalidRequest("filename must not contain path separators")
        now = datetime.now(UTC)
        asset_id = new_id("med")
        asset = StudioMediaAsset(
            id=asset_id, owner=owner, filename=filename, folder=folder,
            content_type=content_type, byte_size=byte_size,
            kind=content_type.split("/", 1)[0], status="UPLOADING",
            object_key=(f"{self.settings.studio_media_s3_prefix}{asset_id}" if self.uses_s3
                        else f"{OBJECT_DIR}/{asset_id}"),
            created_at=now, updated_at=now,
        )
        async with self._quota_lock(owner), self.db.session() as session:
            await self._check_pending_quota(session, owner, byte_size)
            session.add(asset)
        expires = int(time.time()) + self.settings.studio_media_upload_ttl
        if self.uses_s3:
            self._spawn(self._watch_s3(asset.id, expires + S3_GRACE))
            return asset, None
        return asset, f"expires={expires}&signature={self.sign(asset, expires)}"

    async def _check_pending_quota(self, session: Any, owner: str, byte_size: int) -> None:
        """Reserved uploads whose URL may still be used count against the owner's quota."""
        window = timedelta(seconds=self.settings.studio_media_upload_ttl + S3_GRACE)
        count, total = (await session.execute(
            select(func.count(StudioMediaAsset.id),
                   func.coalesce(func.sum(StudioMediaAsset.byte_size), 0))
            .where(StudioMediaAsset.owner == owner, StudioMediaAsset.status == "UPLOADING",
                   StudioMediaAsset.created_at > datetime.now(UTC) - window)
        )).one()
        check_quota(count, self.settings.studio_max_pending_uploads,
                    "pending media uploads per owner", "STUDIO_MAX_PENDING_UPLOADS")
        limit = self.settings.studio_max_pending_upload_bytes
        if int(total) + byte_size > limit:
            raise QuotaExceeded(f"quota exceeded: at most {limit} bytes of pending media uploads "
                                "per owner (STUDIO_MAX_PENDING_UPLOAD_BYTES)")

    async def playable(self, owner: str, ref: str) -> Path:
        """The file a `media` source plays: the owner's READY asset named by its id or its
        objectKey. `ref` is only ever compared with stored values, never made a path."""
        column = StudioMediaAsset.id if ASSET_ID.fullmatch(ref) else StudioMediaAsset.object_key
        async with self.db.session() as session:
            asset = (await session.execute(select(StudioMediaAsset).where(
                column == ref, StudioMediaAsset.owner == owner).limit(1))).scalar_one_or_none()
        if asset is None:
            raise InvalidRequest(NOT_YOURS)
        if asset.status != "READY":
            raise InvalidRequest(f"url: media asset {asset.id} is {asset.status}, not READY")
        path = self.path(asset)
        if not await asyncio.to_thread(path.is_file):
            raise InvalidRequest(f"url: media asset {asset.id} is no longer stored")
        return path

    async def presigned_put(self, asset: StudioMediaAsset) -> str:
        params = {"Bucket": self.settings.s3_bucket, "Key": asset.object_key,
                  "ContentType": asset.content_type}
        url = await asyncio.to_thread(self.s3.generate_presigned_url, "put_object",
                                      Params=params,
                                      ExpiresIn=self.settings.studio_media_upload_ttl)
        return str(url)

    async def list_assets(self, owner: str, after: str | None,
                          limit: int) -> Page[StudioMediaAsset]:
        async with self.db.session() as session:
            query = select(StudioMediaAsset).where(StudioMediaAsset.owner == owner)
            if after is not None:
                query = query.where(StudioMediaAsset.id > after)
            rows = list((await session.execute(
                query.order_by(StudioMediaAsset.id).limit(limit + 1)
            )).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    async def get_asset(self, owner: str, asset_id: str) -> StudioMediaAsset:
        async with self.db.session() as session:
            asset = await session.get(StudioMediaAsset, asset_id) \
                if ASSET_ID.fullmatch(asset_id) else None
        if asset is None or asset.owner != owner:
            raise NotFound("media asset not found")
        return asset

    # -- signed upload --------------------------------------------------------------------

    def sign(self, asset: StudioMediaAsset, expires: int) -> str:
        message = f"{asset.id}\n{expires}\n{asset.content_type}\n{asset.byte_size}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def _authorized_asset(self, asset_id: str, expires: str | None,
                                signature: str | None) -> StudioMediaAsset:
        refused = UploadRefused(401, "the upload URL is invalid or has expired", "invalid_key")
        if not ASSET_ID.fullmatch(asset_id) or not expires or not signature:
            raise refused
        try:
            expires_at = int(expires)
        except ValueError:
            raise refused from None
        async with self.db.session() as session:
            asset = await session.get(StudioMediaAsset, asset_id)
        if asset is None or not secrets_equal(signature, self.sign(asset, expires_at)):
            raise refused
        if expires_at < time.time():
            raise refused
        return asset

    async def receive(self, asset_id: str, expires: str | None, signature: str | None,
                      content_type: str, content_length: int | None,
                      chunks: AsyncIterator[bytes]) -> StudioMediaAsset:
        """Stream one upload to disk; schedule the probe once all `byteSize` bytes are in."""
        asset = await self._authorized_asset(asset_id, expires, signature)
        if not asset.object_key.startswith(OBJECT_DIR):
            raise UploadRefused(409, "this asset uploads to object storage")
        final = self.path(asset)
        if asset.status != "UPLOADING" or final.exists() or asset.id in self._receiving:
            raise UploadRefused(409, "this asset has already been uploaded")
        if normalize_content_type(content_type) != asset.content_type:
            raise UploadRefused(415, f"Content-Type must be {asset.content_type}, as reserved")
        if content_length is not None and content_length > asset.byte_size:
            raise UploadRefused(413, f"the body is larger than byteSize ({asset.byte_size})")
        if content_length is not None and content_length < asset.byte_size:
            raise UploadRefused(400, f"the body is smaller than byteSize ({asset.byte_size})")
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{asset.id}.{secrets.token_hex(6)}.part")
        self._receiving.add(asset.id)
        try:
            await self._write(partial, chunks, asset.byte_size)
            try:
                # link, not rename: it refuses to replace an upload that won a race.
                await asyncio.to_thread(os.link, partial, final)
            except FileExistsError:
                raise UploadRefused(409, "this asset has already been uploaded") from None
        finally:
            self._receiving.discard(asset.id)
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        self._spawn_probe(asset.id)
        return asset

    @staticmethod
    async def _write(partial: Path, chunks: AsyncIterator[bytes], byte_size: int) -> None:
        handle = await asyncio.to_thread(partial.open, "xb")
        try:
            total = 0
            buffer = bytearray()
            async for chunk in chunks:
                total += len(chunk)
                if total > byte_size:
                    raise UploadRefused(413, f"the body is larger than byteSize ({byte_size})")
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            if total < byte_size:
                raise UploadRefused(400, f"the body ended after {total} of {byte_size} bytes")
            await asyncio.to_thread(_finish, handle, bytes(buffer))
        finally:
            handle.close()

    # -- probing --------------------------------------------------------------------------

    def _spawn_probe(self, asset_id: str) -> None:
        self._spawn(self._probe(asset_id))

    def _spawn(self, work: Any) -> None:
        self._tasks.spawn(work)

    async def _fail(self, asset_id: str, reason: str) -> None:
        async with self.db.session() as session:
            await session.execute(update(StudioMediaAsset)
                                  .where(StudioMediaAsset.id == asset_id)
                                  .values(status="FAILED", status_reason=reason,
                                          updated_at=datetime.now(UTC)))

    async def _watch_s3(self, asset_id: str, deadline: float) -> None:
        """Wait for the client's PUT to land in the bucket, then copy it here and probe."""
        async with self.db.session() as session:
            asset = await session.get(StudioMediaAsset, asset_id)
        if asset is None:
            return
        bucket = self.settings.s3_bucket
        while True:
            try:
                head = await asyncio.to_thread(self.s3.head_object, Bucket=bucket,
                                               Key=asset.object_key)
                break
            except Exception as exc:  # botocore ClientError 404 until the PUT lands
                if not _missing(exc):
                    log.info("media asset %s: HEAD failed (%s)", asset_id, type(exc).__name__)
            if time.time() > deadline:
                await self._fail(asset_id, "no upload arrived before the upload URL expired")
                return
            await asyncio.sleep(S3_POLL_SECONDS)
        size = int(head.get("ContentLength", -1))
        stored_type = normalize_content_type(str(head.get("ContentType", "")))
        if size != asset.byte_size or stored_type != asset.content_type:
            await asyncio.to_thread(self.s3.delete_object, Bucket=bucket, Key=asset.object_key)
            await self._fail(asset_id, f"the upload was {size} bytes of {stored_type or '?'}, "
                                       f"not {asset.byte_size} bytes of {asset.content_type}")
            return
        final = self.path(asset)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{asset.id}.{secrets.token_hex(6)}.part")
        try:
            await asyncio.to_thread(self.s3.download_file, bucket, asset.object_key,
                                    str(partial))
            await asyncio.to_thread(os.replace, partial, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        await self._probe(asset_id)

    async def _probe(self, asset_id: str) -> None:
        async with self.db.session() as session:
            asset = await session.get(StudioMediaAsset, asset_id)
        if asset is None:
            return
        path = self.path(asset)
        kind, reason = await asyncio.to_thread(probe_file, path)
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if kind is None:
            values.update(status="FAILED", status_reason=reason)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(path.unlink)
        else:
            values.update(status="READY", kind=kind, status_reason=None)
        async with self.db.session() as session:
            await session.execute(update(StudioMediaAsset)
                                  .where(StudioMediaAsset.id == asset_id).values(**values))
        log.info("media asset %s probed: %s", asset_id, values["status"])


def _missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in ("404", "NoSuchKey", "NotFound")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _finish(handle: Any, tail: bytes) -> None:
    handle.write(tail)
    handle.flush()
    os.fsync(handle.fileno())


def probe_file(path: Path) -> tuple[str | None, str | None]:
    """(kind, None) for a file PyAV can decode a frame of; (None, reason) otherwise.

    Runs in a worker thread: opening and decoding hold the GIL only in short stretches.
    """
    import av

    try:
        with av.open(str(path), mode="r") as container:
            video = [s for s in container.streams.video
                     if not s.disposition & av.stream.Disposition.attached_pic]
            audio = list(container.streams.audio)
            if not video and not audio:
                return None, "the file has no audio or video stream"
            stream = video[0] if video else audio[0]
            if next(iter(container.decode(stream)), None) is None:
                return None, "no frame of the file could be decoded"
            if not video:
                return "audio", None
            still = container.format.name in IMAGE_FORMATS or \
                container.format.name.endswith("_pipe")
            return ("image" if still else "video"), None
    except Exception as exc:  # PyAV raises FFmpegError subclasses, and ValueError/OSError
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return None, f"unreadable media: {reason}"
