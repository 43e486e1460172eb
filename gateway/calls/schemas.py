"""Calls request shapes (validated, unknown fields ignored, `null` never a value: the spec
declares none nullable) and the error shape `{errorCode, errorDescription}`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    model_validator,
)
from quart import Response

from gateway.errors import ApiError, json_error

DEFAULT_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


def render_error(error: ApiError) -> Response:
    code = error.code or DEFAULT_CODES.get(error.status, "internal_error")
    return json_error({"errorCode": code, "errorDescription": error.message}, error)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            null = next((k for k, v in data.items() if v is None and k in cls.model_fields), None)
            if null is not None:
                raise ValueError(f"{null} must not be null (leave it out instead)")
        return data


class SessionDescription(_Shape):
    sdp: StrictStr | None = None
    type: Literal["offer", "answer"] | None = None


class SimulcastPreferences(_Shape):
    preferredRid: StrictStr | None = None
    priorityOrdering: Literal["none", "asciibetical"] | None = None
    ridNotAvailable: Literal["none", "asciibetical"] | None = None
    fallbackStrategy: Literal["auto", "leastBandwidth", "none"] | None = None


class TrackObject(_Shape):
    location: Literal["local", "remote"] | None = None
    mid: StrictStr | None = None
    sessionId: StrictStr | None = None
    trackName: StrictStr | None = None
    bidirectionalMediaStream: StrictBool = False
    kind: StrictStr | None = None
    simulcast: SimulcastPreferences | None = None


class NewSessionRequest(_Shape):
    sessionDescription: SessionDescription | None = None


class TracksRequest(_Shape):
    sessionDescription: SessionDescription | None = None
    tracks: list[TrackObject] = Field(default_factory=list)
    autoDiscover: StrictBool = False


class CloseTrackObject(_Shape):
    mid: StrictStr | None = None


class CloseTracksRequest(_Shape):
    sessionDescription: SessionDescription | None = None
    tracks: list[CloseTrackObject] = Field(default_factory=list)
    force: StrictBool = False


class RenegotiateRequest(_Shape):
    sessionDescription: SessionDescription | None = None


class UpdateTracksRequest(_Shape):
    sessionDescription: SessionDescription | None = None
    tracks: list[TrackObject] = Field(default_factory=list)


class DataChannelObject(_Shape):
    location: Literal["local", "remote"]
    dataChannelName: StrictStr
    sessionId: StrictStr | None = None


class DataChannelsRequest(_Shape):
    dataChannels: list[DataChannelObject]


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"
