"""Calls HTTP routes, written as `/apps/...` (mounted at `/v1` and at the root)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Blueprint, Response, jsonify, request

from gateway.calls.cors import CallsCors
from gateway.calls.live_access import LiveRoomAccess
from gateway.calls.schemas import (
    CloseTracksRequest,
    DataChannelsRequest,
    NewSessionRequest,
    RenegotiateRequest,
    TracksRequest,
    UpdateTracksRequest,
    describe_validation_error,
)
from gateway.calls.service import CallsError, CallsService, LiveSession, placement_key
from gateway.cors import install_cors
from gateway.errors import ApiError
from gateway.jsonbody import InvalidJson, parse_json
from gateway.media_setup import peer_admission
from gateway.placement import forward_if_held_elsewhere
from gateway.routing import use_other_than
from gateway.settings import Settings
from gateway.state import ensure_accepting_media, gateway_state

Shape = TypeVar("Shape", bound=BaseModel)
T = TypeVar("T")


def calls_service() -> CallsService:
    state = gateway_state()
    service = state.services.get("calls")
    if service is None:
        service = CallsService(state.db, state.media, LiveRoomAccess(state.settings))
        state.services["calls"] = service
    return service


async def _call(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except CallsError as error:
        raise ApiError(error.status, error.message, code=error.code) from None


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <app secret>",
                       code="unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def _authorize(app_id: str) -> CallsService:
    service = calls_service()
    if not await service.apps.authenticate(app_id, _bearer()):
        raise ApiError(401, "the bearer token is not the secret of this app",
                       code="unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return service


async def _held_elsewhere(session_id: str) -> Response | None:
    """The owning replica's answer when another replica holds the session's peer."""
    if session_id in calls_service().sessions:
        return None
    return await forward_if_held_elsewhere(gateway_state().placement, placement_key(session_id))


async def _session(app_id: str, session_id: str) -> tuple[CallsService, LiveSession]:
    service = await _authorize(app_id)
    session = await _call(service.get_session(
        app_id, session_id, owner_known_gone=gateway_state().placement.enabled
    ))
    retry_after = await service.check_rate(session_id)
    if retry_after is not None:
        raise ApiError(429, "more than 50 calls per second on this session", code="rate_limited",
                       headers={"Retry-After": str(max(1, round(retry_after + 0.5)))})
    return service, session


async def _body(shape: type[Shape], *, optional: bool = False) -> Shape:
    raw = await request.get_data()
    if not raw.strip():
        if optional:
            return shape()
        raise ApiError(400, "a JSON body is required", code="invalid_request")
    try:
        data: Any = parse_json(raw)
    except InvalidJson:
        raise ApiError(400, "the body is not valid JSON", code="invalid_request") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_request")
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, describe_validation_error(exc), code="invalid_request") from None


def _flag(name: str) -> bool:
    """A boolean query parameter, as the spec types it: absent, `true` or `false`."""
    value = request.args.get(name)
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise ApiError(400, f"{name} must be true or false", code="invalid_request")


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("calls", __name__)
    install_cors(blueprint, CallsCors())
    use_other_than(blueprint)

    @blueprint.post("/apps/<app_id>/sessions/new")
    async def new_session(app_id: str) -> tuple[Response, int]:
        service = await _authorize(app_id)
        ensure_accepting_media()
        body = await _body(NewSessionRequest, optional=True)
        thirdparty = _flag("thirdparty")
        correlation_id = request.args.get("correlationId") or None
        if correlation_id is not None and len(correlation_id) > 200:
            raise ApiError(400, "correlationId is longer than 200 characters")
        with peer_admission():
            result = await _call(service.new_session(
                app_id, body, correlation_id=correlation_id, thirdparty=thirdparty
            ))
        await gateway_state().placement.claim(placement_key(result["sessionId"]))
        return jsonify(result), 201

    @blueprint.post("/apps/<app_id>/sessions/<session_id>/tracks/new")
    async def new_tracks(app_id: str, session_id: str) -> Response:
        if (held := await _held_elsewhere(session_id)) is not None:
            return held
        service, session = await _session(app_id, session_id)
        body = await _body(TracksRequest)
        return jsonify(await _call(service.new_tracks(session, body)))

    @blueprint.put("/apps/<app_id>/sessions/<session_id>/renegotiate")
    async def renegotiate(app_id: str, session_id: str) -> Response:
        if (held := await _held_elsewhere(session_id)) is not None:
            return held
        service, session = await _session(app_id, session_id)
        body = await _body(RenegotiateRequest)
        return jsonify(await _call(service.renegotiate(session, body)))

    @blueprint.put("/apps/<app_id>/sessions/<session_id>/tracks/close")
    async def close_tracks(app_id: str, session_id: str) -> Response:
        if (held := await _held_elsewhere(session_id)) is not None:
            return held
        service, session = await _session(app_id, session_id)
        body = await _body(CloseTracksRequest)
        return jsonify(await _call(service.close_tracks(session, body)))

    @blueprint.put("/apps/<app_id>/sessions/<session_id>/tracks/update")
    async def update_tracks(app_id: str, session_id: str) -> Response:
        if (held := await _held_elsewhere(session_id)) is not None:
            return held
        service, session = await _session(app_id, session_id)
        body = await _body(UpdateTracksRequest)
        return jsonify(await _call(service.update_tracks(session, body)))

    @blueprint.post("/apps/<app_id>/sessions/<session_id>/datachannels/new")
    async def new_datachannels(app_id: str, session_id: str) -> Response:
        if (held := await _held_elsewhere(session_id)) is not None:
            return held
        service, session = await _session(app_id, session_id)
        body = await _body(DataChannelsRequest)
        return jsonify(await _call(service.new_datachannels(session, body)))

    # not `new`: OPTIONS /apps/{appId}/sessions/new must not advertise this GET
    @blueprint.get("/apps/<app_id>/sessions/<other_than(new):session_id>")
    async def session_state(app_id: str, session_id: str) -> Response:
        if (held := await _held_elsewhere(session_id)) is not None:
            return held
        service, session = await _session(app_id, session_id)
        return jsonify(service.session_state(session))

    return blueprint
