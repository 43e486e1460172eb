"""An S3-compatible client from the upstream `S3_*` settings (any API may use it).

`S3_ENDPOINT` is `host:port` (scheme from `S3_USE_SSL`) or a full URL; `S3_PATH_STYLE`
selects path-style addressing. Calls are blocking: run them in a worker thread.
"""

from __future__ import annotations

from typing import Any

from gateway.settings import Settings


def make_s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = settings.s3_endpoint
    if endpoint and "://" not in endpoint:
        endpoint = f"{'https' if settings.s3_use_ssl else 'http'}://{endpoint}"
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=settings.s3_region or "us-east-1",
        aws_access_key_id=(settings.s3_access_key.get_secret_value()
                           if settings.s3_access_key else None),
        aws_secret_access_key=(settings.s3_secret_key.get_secret_value()
                               if settings.s3_secret_key else None),
        config=Config(
            s3={"addressing_style": "path" if settings.s3_path_style else "auto"},
            signature_version="s3v4",
            retries={"max_attempts": 3},
            connect_timeout=10,
            read_timeout=60,
        ),
    )
