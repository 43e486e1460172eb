"""Cloudflare Calls-compatible SFU API, under `/v1/apps/...` and `/apps/...`."""

from gateway.apis import ApiMount
from gateway.calls.routes import create_blueprint
from gateway.calls.schemas import render_error

MOUNT = ApiMount(
    name="calls",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/v1/apps/", "/apps/"),
    url_prefixes=("/v1", ""),
)
