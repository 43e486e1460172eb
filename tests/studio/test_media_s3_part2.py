"""Media library on S3-compatible storage (moto's server on 127.0.0.1): a boto3-presigned PUT,
then the gateway finds the object, checks it, copies it under the data dir and probes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from quart import Quart

from tests.s3server import s3_client, s3_server
from tests.studio.conftest import StudioClient
from tests.studio.media_files import mp4_bytes, png_bytes

BUCKET = "studio-media-test"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3_server(tmp_path_factory.mktemp("moto"), BUCKET) as endpoint:
        yield endpoint


@pytest.fixture
def studio_env(s3_endpoint: str) -> dict[str, str]:
    return {"STUDIO_RATE_LIMIT_RPS": "0", "STUDIO_MEDIA_STORAGE": "s3",
            "S3_ENDPOINT": s3_endpoint, "S3_BUCKET": BUCKET, "S3_USE_SSL": "0",
            "S3_PATH_STYLE": "1", "S3_ACCESS_KEY": "test-access",
            "S3_SECRET_KEY": "test-secret", "S3_REGION": "us-east-1"}


async def _wait_settled(studio: StudioClient, key: str, asset_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        listed = (await studio.call("GET", "/v1/media", key=key)).json()["data"]
        asset = next(a for a in listed if a["id"] == asset_id)
        if asset["status"] != "UPLOADING":
            return dict(asset)
        assert time.monotonic() < deadline, asset
        await asyncio.sleep(0.3)


async def test_presigned_s3_upload_becomes_ready(app: Quart, studio: StudioClient,
                                                 admin_key: str, s3_endpoint: str) -> None:
    data = mp4_bytes()
    upload = (await studio.call("POST", "/v1/media", key=admin_key, json_body={
        "filename": "clip.mp4", "contentType": "video/mp4", "byteSize": len(data)})).json()
    assert upload["uploadUrl"].startswith(f"http://{s3_endpoint}/{BUCKET}/studio-media/")
    assert upload["objectKey"] == f"studio-media/{upload['assetId']}"
    assert "X-Amz-Signature=" in upload["uploadUrl"]
    reply = await asyncio.to_thread(httpx.put, upload["uploadUrl"], content=data,
                                    headers={"Content-Type": "video/mp4"})
    assert reply.status_code == 200, reply.text
    asset = await _wait_settled(studio, admin_key, upload["assetId"])
    assert (asset["status"], asset["kind"]) == ("READY", "video")
    # The local copy is what a `media` source plays.
    sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                             json_body={"name": "s"})).json()["id"]
    source = await studio.call("POST", f"/v1/studios/{sid}/sources", key=admin_key,
                               json_body={"name": "c", "type": "media",
                                          "url": upload["assetId"]})
    assert source.status == 201


async def test_wrong_size_in_the_bucket_fails(app: Quart, studio: StudioClient,
                                              admin_key: str, s3_endpoint: str) -> None:
    data = png_bytes()
    upload = (await studio.call("POST", "/v1/media", key=admin_key, json_body={
        "filename": "p.png", "contentType": "image/png", "byteSize": len(data) - 1})).json()
    reply = await asyncio.to_thread(httpx.put, upload["uploadUrl"], content=data,
                                    headers={"Content-Type": "image/png"})
    assert reply.status_code == 200, reply.text
    asset = await _wait_settled(studio, admin_key, upload["assetId"])
    assert asset["status"] == "FAILED" and "bytes" in asset["statusReason"]
    objects = s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert upload["objectKey"] not in [o["Key"] for o in objects]  # nothing half-right kept
