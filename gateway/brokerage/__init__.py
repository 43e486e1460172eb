"""Punch: SRT session brokerage."""

from gateway.apis import ApiMount
from gateway.brokerage.routes import create_blueprint
from gateway.brokerage.schemas import render_error

MOUNT = ApiMount(
    name="brokerage",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/api/health", "/api/session", "/api/ws/", "/s/"),
    exact_paths=("/",),
)
