"""A real S3-compatible HTTP server on loopback (moto's server) for the tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.pg import free_port

ACCESS_KEY, SECRET_KEY, REGION = "test-access", "test-secret", "us-east-1"


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=f"http://{endpoint}", region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@contextmanager
def s3_server(workdir: Path, bucket: str) -> Iterator[str]:
    """Yields `127.0.0.1:<port>` with `bucket` created."""
    port = free_port()
    log = workdir / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    endpoint = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://{endpoint}/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        s3_client(endpoint).create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)
