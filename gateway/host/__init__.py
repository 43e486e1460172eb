"""punktfunk management API: the control plane for the gateway host."""

from gateway.apis import ApiMount
from gateway.host.routes import create_blueprint
from gateway.host.schemas import render_error

MOUNT = ApiMount(
    name="host",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/api/v1/",),
)
