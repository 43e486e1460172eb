"""punktfunk response shapes: errors are `{error}`."""

from __future__ import annotations

from quart import Response

from gateway.errors import ApiError, json_error

# mediagate implements the management API itself; there is no punktfunk-core C library
# behind it. Clients read this as the ABI generation of the API they talk to.
ABI_VERSION = 1


def render_error(error: ApiError) -> Response:
    return json_error({"error": error.message}, error)


def health_body(version: str) -> dict[str, object]:
    return {"status": "ok", "version": version, "abi_version": ABI_VERSION}
