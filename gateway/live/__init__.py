"""Live rooms: WHIP publish / WHEP play."""

from gateway.apis import ApiMount
from gateway.live.routes import create_blueprint
from gateway.live.schemas import render_error

MOUNT = ApiMount(
    name="live",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=(
        "/api/whip/",
        "/api/whep/",
        "/api/rooms",
        "/api/records",
        "/api/admin/",
        "/api/bootstrap",
        "/records/",
        "/web/",
    ),
    exact_paths=("/healthz", "/metrics"),
)
