"""Upload finished recordings to S3-compatible storage, with the upstream's `S3_*` settings.

As upstream: one PUT per finished file, object key `S3_PREFIX` + file name, the local file
removed afterwards only with `DELETE_RECORDING_AFTER_UPLOAD=1` and only after a successful
upload. `S3_ENDPOINT` is `host:port` (scheme from `S3_USE_SSL`) or a full URL.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from gateway.s3 import make_s3_client
from gateway.settings import Settings

log = logging.getLogger("mediagate.live.upload")


def object_key(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


class S3Uploader:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket or ""
        self.prefix = settings.s3_prefix
        self.delete_after = settings.delete_recording_after_upload
        self._settings = settings
        self._client: Any = None
        self.uploaded: list[str] = []

    def upload_now(self, path: Path) -> str:
        """Blocking upload; returns the object key."""
        if self._client is None:
            self._client = make_s3_client(self._settings)
        key = object_key(self.prefix, path.name)
        self._client.upload_file(str(path), self.bucket, key)
        if self.delete_after:
            path.unlink(missing_ok=True)
        return key

    async def upload(self, path: Path) -> str | None:
        """Upload `path`; failures are logged (the local file is kept)."""
        try:
            key = await asyncio.to_thread(self.upload_now, path)
        except Exception as exc:
            log.warning("upload of %s failed: %s", path.name, exc)
            return None
        self.uploaded.append(key)
        log.info("uploaded %s to s3://%s/%s", path.name, self.bucket, key)
        return key
