"""Studio request/response shapes and the `{error: {code, message, requestId}}` envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError
from quart import Response

from gateway.errors import ApiError, json_error
from gateway.requestid import current_request_id
from gateway.studio.models import Studio, StudioDestination, StudioSource

DEFAULT_CODES = {
    400: "invalid_request",
    401: "invalid_key",
    403: "insufficient_scope",
    404: "not_found",
    405: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    429: "rate_limited",
    503: "write_disabled",
}


def render_error(error: ApiError) -> Response:
    body: dict[str, object] = {
        "code": error.code or DEFAULT_CODES.get(error.status, "internal_error"),
        "message": error.message,
        "requestId": current_request_id(),
    }
    body.update(error.extra)
    return json_error({"error": body}, error)


def health_body(write_enabled: bool) -> dict[str, object]:
    return {"status": "ok", "writeEnabled": write_enabled}


# -- requests ---------------------------------------------------------------------------------

def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Text = Annotated[str, StringConstraints(max_length=2000), NoNul]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoNul]
Key = Annotated[str, StringConstraints(max_length=500), NoNul]
Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), NoNul]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class CreateStudio(_Body):
    name: Name
    description: Text | None = None


class UpdateStudio(_Body):
    name: Name | None = None
    description: Text | None = None
    autoGoLive: bool | None = None
    autoGoOfflineOnDrop: bool | None = None


class CreateSource(_Body):
    name: Name
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
                    NoNul]
    url: Url | None = None
    active: bool | None = None


class UpdateSource(_Body):
    name: Name | None = None
    url: Url | None = None
    active: bool | None = None


class CreateDestination(_Body):
    name: Name
    platform: Word
    rtmpUrl: Url | None = None
    streamKey: Key | None = None
    connectionId: Word | None = None
    enabled: bool | None = None
    vertical: bool | None = None


class UpdateDestination(_Body):
    name: Name | None = None
    platform: Word | None = None
    rtmpUrl: Url | None = None
    streamKey: Key | None = None
    enabled: bool | None = None
    vertical: bool | None = None


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise ApiError(400, f"{where}: {error['msg']}", code="invalid_request") from None


def sent(model: BaseModel, mapping: dict[str, str]) -> dict[str, Any]:
    """Fields the client sent (non-null), renamed to column names."""
    return {
        column: getattr(model, name)
        for name, column in mapping.items()
        if name in model.model_fields_set and getattr(model, name) is not None
    }


# -- responses --------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if text.endswith("+00:00") else text + "Z"


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def studio_body(studio: Studio) -> dict[str, Any]:
    return _compact({
        "id": studio.id,
        "name": studio.name,
        "description": studio.description,
        "ownerSub": studio.owner,
        "role": "owner",
        "createdAt": iso(studio.created_at),
        "lastOpenedAt": iso(studio.last_opened_at),
        "autoGoLive": studio.auto_go_live,
        "autoGoOfflineOnDrop": studio.auto_go_offline_on_drop,
    })


def source_body(source: StudioSource, status: str,
                ingest: tuple[str, str] | None) -> dict[str, Any]:
    body = _compact({
        "id": source.id,
        "studioId": source.studio_id,
        "name": source.name,
        "type": source.type,
        "active": source.active,
        "status": status,
        "url": source.url,
        "createdAt": iso(source.created_at),
    })
    if ingest is not None:
        body["whipUrl"], body["ingestToken"] = ingest
    return body


def destination_body(destination: StudioDestination, status: str,
                     reason: str | None) -> dict[str, Any]:
    return _compact({
        "id": destination.id,
        "studioId": destination.studio_id,
        "name": destination.name,
        "platform": destination.platform,
        "enabled": destination.enabled,
        "vertical": destination.vertical,
        "status": status,
        "statusReason": reason,
        "rtmpUrl": destination.rtmp_url,
        "connectionId": destination.connection_id,
        "hasStreamKey": destination.stream_key_sealed is not None,
        "createdAt": iso(destination.created_at),
    })


def page_body(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": items}
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    return body
