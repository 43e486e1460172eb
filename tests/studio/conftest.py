"""Studio fixtures: keys, and a client whose every reply is contract-checked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from quart import Quart

from gateway.settings import Settings
from gateway.state import EXTENSION
from gateway.studio import apikeys
from tests import contract


@pytest.fixture
def studio_env() -> dict[str, str]:
    # Local RTMP servers and sinks on 127.0.0.1: the egress guard refuses loopback otherwise.
    return {"STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}


@pytest.fixture
def settings(tmp_path: Path, studio_env: dict[str, str]) -> Settings:
    return Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path / "data"), **studio_env})


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class StudioClient:
    """Quart test client for /v1: every response is validated against specs/studio."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.client = app.test_client()

    async def call(self, method: str, path: str, *, key: str | None = None,
                   json_body: Any = None, headers: dict[str, str] | None = None,
                   data: bytes | None = None, check: bool = True) -> Reply:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers.setdefault("Authorization", f"Bearer {key}")
        kwargs: dict[str, Any] = {"headers": all_headers}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
        response = await self.client.open(path, method=method, **kwargs)
        body = await response.get_data()
        if check:
            contract.check("studio", method, path, response, body)
        return Reply(response.status_code, response.headers, body)


@pytest.fixture
async def studio(app: Quart) -> AsyncIterator[StudioClient]:
    yield StudioClient(app)


async def make_key(app: Quart, owner: str, scopes: list[str] | tuple[str, ...]) -> str:
    db = app.extensions[EXTENSION].db
    return (await apikeys.create_key(db, owner, scopes)).key


async def upload_media(app: Quart, studio: StudioClient, key: str, data: bytes,
                       content_type: str = "video/mp4") -> dict[str, Any]:
    """Reserve, upload and probe one media-library asset; the upload reply (assetId,
    objectKey, ...). `media` sources name such an asset."""
    reply = await studio.call("POST", "/v1/media", key=key, json_body={
        "filename": "clip", "contentType": content_type, "byteSize": len(data)})
    assert reply.status == 201, reply.body
    upload: dict[str, Any] = reply.json()
    parts = urlsplit(upload["uploadUrl"])
    put = await studio.call("PUT", f"{parts.path}?{parts.query}", data=data,
                            headers={"Content-Type": content_type})
    assert put.status == 200, put.body
    await app.extensions[EXTENSION].services["studio.library"].wait_idle()
    return upload


@pytest.fixture
async def admin_key(app: Quart) -> str:
    return await make_key(app, "alice", apikeys.ALL_SCOPES)
