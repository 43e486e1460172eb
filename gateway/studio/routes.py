"""Studio HTTP routes: parse, authorize, call the service, render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from quart import Blueprint, Response, jsonify, request

from gateway.cors import CorsPolicy, install_cors
from gateway.errors import ApiError
from gateway.jsonbody import json_body
from gateway.media_setup import peer_admission
from gateway.pagination import CursorCodec, PaginationError, parse_limit
from gateway.settings import Settings
from gateway.state import ensure_accepting_media, gateway_state
from gateway.studio import schemas, service
from gateway.studio.auth import (
    authenticate,
    check_write_enabled,
    presented_key,
    principal,
    require,
    studio_service,
)
from gateway.studio.models import StudioDestination, StudioSource
from gateway.studio.schemas import health_body
from gateway.studio.service import (
    WEBRTC_TYPES,
    Conflict,
    InvalidRequest,
    NotFound,
    Page,
    QuotaExceeded,
    StudioService,
)

P = ParamSpec("P")
R = TypeVar("R")

STUDIO_FIELDS = {"name": "name", "description": "description", "autoGoLive": "auto_go_live",
                 "autoGoOfflineOnDrop": "auto_go_offline_on_drop"}
SOURCE_FIELDS = {"name": "name", "url": "url", "active": "active"}
DESTINATION_FIELDS = {"name": "name", "platform": "platform", "rtmpUrl": "rtmp_url",
                      "connectionId": "connection_id", "enabled": "enabled",
                      "vertical": "vertical"}
MAX_SDP_BYTES = 64 * 1024
# Keys travel in headers, never cookies, so any origin may call (browser webcam sources
# publish over WHIP from their own pages).
CORS = CorsPolicy(
    allowed_origin="*",
    allow_methods="GET, POST, PUT, PATCH, DELETE, OPTIONS",
    allow_headers="Content-Type, Authorization, X-API-Key, X-Request-Id",
    expose_headers="Location, X-Request-Id, Retry-After",
)


def domain_errors(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Service exceptions -> the API's 400 / 404 / 409."""

    @wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except NotFound as exc:
            raise ApiError(404, str(exc), code="not_found") from None
        except InvalidRequest as exc:
            raise ApiError(400, str(exc), code="invalid_request") from None
        except QuotaExceeded as exc:
            raise ApiError(409, str(exc), code="quota_exceeded") from None
        except Conflict as exc:
            raise ApiError(409, str(exc), code="conflict") from None

    return wrapper


def _cursor_codec() -> CursorCodec:
    return CursorCodec(gateway_state().secret.derive("studio-cursor"))


def _page_args() -> tuple[str | None, int]:
    try:
        limit = parse_limit(request.args.get("limit"))
        raw = request.args.get("cursor")
        after = _cursor_codec().decode(raw) if raw else None
    except PaginationError as exc:
        raise ApiError(400, str(exc), code="invalid_request") from None
    return after, limit


def _next_cursor(page: Page[Any]) -> str | None:
    return _cursor_codec().encode(page.next_key) if page.next_key is not None else None


async def _json_body() -> Any:
    return await json_body(code="invalid_request")


def _whip_path(studio_id: str, source_id: str) -> str:
    return f"/v1/studios/{studio_id}/sources/{source_id}/whip"


def _render_source(source: StudioSource) -> dict[str, Any]:
    svc = studio_service()
    ingest = None
    if source.type in WEBRTC_TYPES:
        base = (gateway_state().settings.public_url or "").rstrip("/")
        ingest = (base + _whip_path(source.studio_id, source.id),
                  svc.ingest_token(source.studio_id, source.id))
    return schemas.source_body(source, svc.source_status(source), ingest)


def _render_destination(destination: StudioDestination) -> dict[str, Any]:
    state = studio_service().destination_state(destination)
    return schemas.destination_body(destination, state.status, state.reason)


def _created(body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), 201


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("studio", __name__)
    install_cors(blueprint, CORS)

    @blueprint.get("/v1/health")
    async def health() -> Response:
        return jsonify(health_body(service.write_enabled(settings)))

    @blueprint.get("/v1/openapi.json")
    async def openapi() -> Response:
        return jsonify(gateway_state().specs.get("studio"))

    # -- studios --------------------------------------------------------------------------

    @blueprint.get("/v1/studios")
    @require("studios:read")
    async def list_studios() -> Response:
        after, limit = _page_args()
        page = await studio_service().list_studios(principal().owner, after, limit)
        return jsonify(schemas.page_body([schemas.studio_body(s) for s in page.items],
                                         _next_cursor(page)))

    @blueprint.post("/v1/studios")
    @require("studios:write", write=True)
    @domain_errors
    async def create_studio() -> tuple[Response, int]:
        body = schemas.parse_body(schemas.CreateStudio, await _json_body())
        studio = await studio_service().create_studio(principal().owner, body.name,
                                                      body.description)
        return _created(schemas.studio_body(studio))

    @blueprint.get("/v1/studios/<studio_id>")
    @require("studios:read")
    @domain_errors
    async def get_studio(studio_id: str) -> Response:
        studio = await studio_service().get_studio(principal().owner, studio_id)
        return jsonify(schemas.studio_body(studio))

    @blueprint.patch("/v1/studios/<studio_id>")
    @require("studios:write", write=True)
    @domain_errors
    async def update_studio(studio_id: str) -> Response:
        body = schemas.parse_body(schemas.UpdateStudio, await _json_body())
        studio = await studio_service().update_studio(
            principal().owner, studio_id, schemas.sent(body, STUDIO_FIELDS)
        )
        return jsonify(schemas.studio_body(studio))

    # -- sources --------------------------------------------------------------------------

    @blueprint.get("/v1/studios/<studio_id>/sources")
    @require("sources:read")
    @domain_errors
    async def list_sources(studio_id: str) -> Response:
        after, limit = _page_args()
        page = await studio_service().list_sources(principal().owner, studio_id, after, limit)
        return jsonify(schemas.page_body([_render_source(s) for s in page.items],
                                         _next_cursor(page)))

    @blueprint.post("/v1/studios/<studio_id>/sources")
    @require("sources:write", write=True)
    @domain_errors
    async def create_source(studio_id: str) -> tuple[Response, int]:
        body = schemas.parse_body(schemas.CreateSource, await _json_body())
        source = await studio_service().create_source(
            principal().owner, studio_id, body.name, body.type, body.url, body.active
        )
        return _created(_render_source(source))

    @blueprint.patch("/v1/studios/<studio_id>/sources/<source_id>")
    @require("sources:write", write=True)
    @domain_errors
    async def update_source(studio_id: str, source_id: str) -> Response:
        body = schemas.parse_body(schemas.UpdateSource, await _json_body())
        source = await studio_service().update_source(
            principal().owner, studio_id, source_id, schemas.sent(body, SOURCE_FIELDS)
        )
        return jsonify(_render_source(source))

    @blueprint.delete("/v1/studios/<studio_id>/sources/<source_id>")
    @require("sources:write", write=True)
    @domain_errors
    async def delete_source(studio_id: str, source_id: str) -> Response:
        await studio_service().delete_source(principal().owner, studio_id, source_id)
        return jsonify({"ok": True})

    # -- WHIP ingest for webrtc-input / webcam sources ------------------------------------

    async def authorize_ingest(svc: StudioService, studio_id: str, source_id: str) -> None:
        """The source's own ingest token (`sit_...`), or an API key with sources:write."""
        key = presented_key() or ""
        if key.startswith("sit_"):
            if not svc.check_ingest_token(studio_id, source_id, key):
                raise ApiError(401, "invalid ingest token", code="invalid_key")
            return
        caller = await authenticate()
        if "sources:write" not in caller.scopes:
            raise ApiError(403, "this key lacks the sources:write scope",
                           code="insufficient_scope", extra={"requiredScope": "sources:write"})
        await svc.check_source_owner(caller.owner, studio_id, source_id)

    @blueprint.post("/v1/studios/<studio_id>/sources/<source_id>/whip")
    @domain_errors
    async def whip_publish(studio_id: str, source_id: str) -> Response:
        svc = studio_service()
        await authorize_ingest(svc, studio_id, source_id)
        check_write_enabled()
        ensure_accepting_media()
        if request.mimetype != "application/sdp":
            raise ApiError(415, "the offer must be application/sdp", code="invalid_request")
        offer = (await request.get_data()).decode("utf-8", errors="replace")
        if not offer.strip() or len(offer) > MAX_SDP_BYTES:
            raise ApiError(400, "an SDP offer is required", code="invalid_request")
        with peer_admission():
            session_id, answer = await svc.whip_publish(studio_id, source_id, offer)
        response = Response(answer, status=201, content_type="application/sdp")
        response.headers["Location"] = f"{_whip_path(studio_id, source_id)}/{session_id}"
        return response

    @blueprint.delete("/v1/studios/<studio_id>/sources/<source_id>/whip/<session_id>")
    @domain_errors
    async def whip_delete(studio_id: str, source_id: str, session_id: str) -> Response:
        svc = studio_service()
        await authorize_ingest(svc, studio_id, source_id)
        await svc.whip_delete(studio_id, source_id, session_id)
        return jsonify({"ok": True})

    # -- destinations ---------------------------------------------------------------------

    @blueprint.get("/v1/studios/<studio_id>/destinations")
    @require("destinations:read")
    @domain_errors
    async def list_destinations(studio_id: str) -> Response:
        after, limit = _page_args()
        page = await studio_service().list_destinations(principal().owner, studio_id, after,
                                                        limit)
        return jsonify(schemas.page_body([_render_destination(d) for d in page.items],
                                         _next_cursor(page)))

    @blueprint.post("/v1/studios/<studio_id>/destinations")
    @require("destinations:write", write=True)
    @domain_errors
    async def create_destination(studio_id: str) -> tuple[Response, int]:
        body = schemas.parse_body(schemas.CreateDestination, await _json_body())
        destination = await studio_service().create_destination(
            principal().owner, studio_id, schemas.sent(body, DESTINATION_FIELDS), body.streamKey
        )
        return _created(_render_destination(destination))

    @blueprint.patch("/v1/studios/<studio_id>/destinations/<destination_id>")
    @require("destinations:write", write=True)
    @domain_errors
    async def update_destination(studio_id: str, destination_id: str) -> Response:
        body = schemas.parse_body(schemas.UpdateDestination, await _json_body())
        destination = await studio_service().update_destination(
            principal().owner, studio_id, destination_id,
            schemas.sent(body, DESTINATION_FIELDS),
            body.streamKey if "streamKey" in body.model_fields_set else None,
        )
        return jsonify(_render_destination(destination))

    @blueprint.delete("/v1/studios/<studio_id>/destinations/<destination_id>")
    @require("destinations:write", write=True)
    @domain_errors
    async def delete_destination(studio_id: str, destination_id: str) -> Response:
        await studio_service().delete_destination(principal().owner, studio_id, destination_id)
        return jsonify({"ok": True})

    # -- stream lifecycle -----------------------------------------------------------------

    @blueprint.get("/v1/studios/<studio_id>/stream-status")
    @require("stream:read")
    @domain_errors
    async def stream_status(studio_id: str) -> Response:
        status = await studio_service().stream_status(principal().owner, studio_id)
        body: dict[str, Any] = {"live": status.live}
        if status.live:
            body.update({
                "liveStartedAt": schemas.iso(status.live_started_at),
                "broadcastStartedAt": schemas.iso(status.broadcast_started_at),
                "encoderStreamId": status.encoder_stream_id,
                "mode": status.mode,
            })
        return jsonify({k: v for k, v in body.items() if v is not None})

    @blueprint.post("/v1/studios/<studio_id>/go-live")
    @require("stream:golive", write=True)
    @domain_errors
    async def go_live(studio_id: str) -> Response:
        stream_id, destination_ids = await studio_service().go_live(principal().owner, studio_id)
        return jsonify({"encoderStreamId": stream_id, "destinationIds": destination_ids})

    @blueprint.post("/v1/studios/<studio_id>/go-offline")
    @require("stream:golive", write=True)
    @domain_errors
    async def go_offline(studio_id: str) -> Response:
        await studio_service().go_offline(principal().owner, studio_id)
        return jsonify({"ok": True})

    from gateway.studio.routes_part2 import register  # part 2: media, chat, webhooks
    register(blueprint, settings)
    return blueprint

