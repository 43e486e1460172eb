"""punktfunk request/response shapes: errors are `{error}`; bodies are checked here (422)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from quart import Response

from gateway.errors import ApiError, json_error

# mediagate implements the management API itself; there is no punktfunk-core C library
# behind it. Clients read this as the ABI generation of the API they talk to.
ABI_VERSION = 1

PIN_RE = re.compile(r"[0-9]{1,16}")
FINGERPRINT_RE = re.compile(r"[0-9a-fA-F]{64}")
ART_FIELDS = ("portrait", "header", "hero", "logo")
MAX_TITLE = 512
MAX_URL = 2048
MAX_NAME = 128


def render_error(error: ApiError) -> Response:
    return json_error({"error": error.message}, error)


def health_body(version: str) -> dict[str, object]:
    return {"status": "ok", "version": version, "abi_version": ABI_VERSION}


def unprocessable(message: str) -> ApiError:
    return ApiError(422, message)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise unprocessable("expected a JSON object")
    return body


def _optional_string(value: Any, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise unprocessable(f"{field}: expected a string or null")
    if len(value) > max_length:
        raise unprocessable(f"{field}: longer than {max_length} characters")
    return value


@dataclass(frozen=True)
class CustomInput:
    title: str
    art: dict[str, str | None]
    launch: dict[str, str] | None


def parse_custom_input(body: Any) -> CustomInput:
    data = _object(body)
    title = data.get("title")
    if not isinstance(title, str):
        raise unprocessable("title: expected a string")
    art_in = data.get("art")
    art: dict[str, str | None] = dict.fromkeys(ART_FIELDS)
    if art_in is not None:
        if not isinstance(art_in, dict):
            raise unprocessable("art: expected an object")
        for name in ART_FIELDS:
            art[name] = _optional_string(art_in.get(name), f"art.{name}", MAX_URL)
    launch_in = data.get("launch")
    launch: dict[str, str] | None = None
    if launch_in is not None:
        if not isinstance(launch_in, dict):
            raise unprocessable("launch: expected an object or null")
        kind, value = launch_in.get("kind"), launch_in.get("value")
        if not isinstance(kind, str) or not isinstance(value, str):
            raise unprocessable("launch: expected {kind, value} strings")
        if kind not in ("steam_appid", "command"):
            raise unprocessable("launch.kind: expected steam_appid or command")
        if len(value) > 4096:
            raise unprocessable("launch.value: longer than 4096 characters")
        launch = {"kind": kind, "value": value}
    if len(title) > MAX_TITLE:  # as sent: the spec's maxLength counts what the client sent
        raise unprocessable(f"title: longer than {MAX_TITLE} characters")
    title = title.strip()
    if not title:
        raise ApiError(400, "title must not be empty")
    return CustomInput(title=title, art=art, launch=launch)


def parse_pin(body: Any) -> str:
    data = _object(body)
    pin = data.get("pin")
    if not isinstance(pin, str):
        raise unprocessable("pin: expected a string")
    if not PIN_RE.fullmatch(pin):
        raise ApiError(400, "malformed PIN: expected 1-16 ASCII digits")
    return pin


def parse_arm(body: Any) -> int | None:
    data = _object(body)
    ttl = data.get("ttl_secs")
    if ttl is None:
        return None
    if isinstance(ttl, float) and ttl.is_integer():  # 60.0 is an integer to JSON Schema
        ttl = int(ttl)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0 or ttl > 2**31 - 1:
        raise unprocessable("ttl_secs: expected a non-negative integer or null")
    return ttl


def parse_approve(body: Any) -> str | None:
    data = _object(body)
    name = _optional_string(data.get("name"), "name", MAX_NAME)
    if name is not None and not name.strip():
        raise unprocessable("name: must not be blank")
    return name.strip() if name is not None else None


def check_fingerprint(value: str) -> str:
    if not FINGERPRINT_RE.fullmatch(value):
        raise ApiError(400, "malformed fingerprint: expected 64 hex characters")
    return value.lower()
