"""Studio: the TRaX /v1 developer API."""

from gateway.apis import ApiMount
from gateway.studio.routes import create_blueprint
from gateway.studio.schemas import render_error

MOUNT = ApiMount(
    name="studio",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=("/v1/",),
)
