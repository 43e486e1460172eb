"""Live rooms over HTTP: WHIP/WHEP with RFC 9725 session resources, rooms, records, admin,
health, metrics and the browser pages. Parse, authorize, call the service, render."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from quart import Blueprint, Response, jsonify, redirect, request, send_file, send_from_directory

from gateway.bodylimit import body_limit
from gateway.clientip import request_client_ip
from gateway.cors import install_cors
from gateway.errors import ApiError
from gateway.live import metrics, records, service
from gateway.live.auth import Authorizer
from gateway.live.cors import LiveCorsPolicy
from gateway.live.schemas import bootstrap, ice_server_links
from gateway.live.service import (
    LiveError,
    LiveService,
    LiveSession,
    Role,
    room_key,
    session_key,
)
from gateway.media_setup import peer_admission
from gateway.placement import forward_if_held_elsewhere
from gateway.ratelimit import enforce, per_second
from gateway.settings import Settings
from gateway.state import ensure_accepting_media, gateway_state

SDP_LIMIT = 1 << 20
FRAGMENT_LIMIT = 64 * 1024
SDP_TYPE = "application/sdp"
FRAGMENT_TYPE = "application/trickle-ice-sdpfrag"
WEB_DIR = Path(__file__).with_name("web")


def live_service() -> LiveService:
    from gateway.live import ensure_service

    return ensure_service(gateway_state())


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("live", __name__)
    authorizer = Authorizer(settings)
    limiter = per_second(settings.rate_limit_rps, settings.rate_limit_burst)
    install_cors(blueprint, LiveCorsPolicy(settings.allowed_origin))
    registries: dict[int, CollectorRegistry] = {}
    links = ice_server_links(settings)

    async def limit() -> None:
        await enforce(limiter, request_client_ip())

    def check_room(room: str) -> None:
        if not service.valid_room(room):
            raise ApiError(400, "invalid room")

    def authorize(room: str) -> None:
        if not authorizer.room_ok(request.headers, room):
            raise ApiError(401, "unauthorized")

    async def read_text() -> str:
        return (await request.get_data()).decode("utf-8", errors="replace")

    def with_links(response: Response) -> Response:
        for link in links:
            response.headers.add("Link", link)
        return response

    def created(session: LiveSession, answer: str) -> Response:
        response = Response(answer, status=201, content_type=SDP_TYPE)
        response.headers["Location"] = session.location
        response.headers["ETag"] = session.etag
        return with_links(response)

    async def negotiate(room: str, role: Role) -> Response:
        check_room(room)
        await limit()
        authorize(room)
        offer = await read_text()
        live = live_service()
        placement = gateway_state().placement
        if live.room_state(room) is None:
            # the room may live on another replica: its publisher's peers are there
            held = await forward_if_held_elsewhere(placement, room_key(room))
            if held is not None:
                return held
        ensure_accepting_media()
        try:
            with peer_admission():
                if role == "publisher":
                    session, answer = await live.publish(room, offer)
                else:
                    session, answer = await live.play(room, offer)
            if role == "publisher":
                await placement.claim(room_key(room))
        except LiveError as exc:
            raise ApiError(exc.status, exc.message) from None
        await placement.claim(session_key(session.id))
        return created(session, answer)

    async def endpoint_options(room: str) -> Response:
        """RFC 9725 ICE server discovery (a CORS preflight is answered before this)."""
        check_room(room)
        response = with_links(Response("", status=204))
        response.headers["Accept-Post"] = SDP_TYPE
        return response

    @blueprint.route("/api/whip/publish/<room>", methods=["POST", "OPTIONS"])
    @body_limit(SDP_LIMIT)
    async def whip_publish(room: str) -> Response:
        if request.method == "OPTIONS":
            return await endpoint_options(room)
        return await negotiate(room, "publisher")

    @blueprint.route("/api/whep/play/<room>", methods=["POST", "OPTIONS"])
    @body_limit(SDP_LIMIT)
    async def whep_play(room: str) -> Response:
        if request.method == "OPTIONS":
            return await endpoint_options(room)
        return await negotiate(room, "viewer")

    async def held_elsewhere(session_id: str) -> Response | None:
        if live_service().has_session(session_id):
            return None
        return await forward_if_held_elsewhere(gateway_state().placement,
                                               session_key(session_id))

    def check_resource_room(room: str) -> None:
        if not service.valid_room(room):  # no session resource lives under a bad name
            raise ApiError(404, "session not found")

    # Session resources are not rate limited: trickled candidates arrive in bursts, and a
    # client must always be able to end what it started.
    async def session_delete(room: str, session_id: str, role: Role) -> Response:
        check_resource_room(room)
        authorize(room)
        held = await held_elsewhere(session_id)
        if held is not None:
            return held
        try:
            await live_service().end_session(room, session_id, role)
        except LiveError as exc:
            raise ApiError(exc.status, exc.message) from None
        return Response("", status=200)

    async def session_patch(room: str, session_id: str, role: Role) -> Response:
        check_resource_room(room)
        authorize(room)
        held = await held_elsewhere(session_id)
        if held is not None:
            return held
        live = live_service()
        try:
            live.session(room, session_id, role)
        except LiveError as exc:
            raise ApiError(exc.status, exc.message) from None
        if request.mimetype != FRAGMENT_TYPE:
            raise ApiError(415, "unsupported media type",
                           headers={"Accept-Patch": FRAGMENT_TYPE})
        try:
            result = await live.patch_session(room, session_id, role, await read_text(),
                                              request.headers.get("If-Match"))
        except LiveError as exc:
            raise ApiError(exc.status, exc.message) from None
        if result.fragment is None:
            response = Response("", status=204)
        else:
            response = Response(result.fragment, status=200, content_type=FRAGMENT_TYPE)
        response.headers["ETag"] = result.etag
        return response

    @blueprint.delete("/api/whip/publish/<room>/<session_id>")
    async def whip_delete(room: str, session_id: str) -> Response:
        return await session_delete(room, session_id, "publisher")

    @blueprint.delete("/api/whep/play/<room>/<session_id>")
    async def whep_delete(room: str, session_id: str) -> Response:
        return await session_delete(room, session_id, "viewer")

    @blueprint.patch("/api/whip/publish/<room>/<session_id>")
    @body_limit(FRAGMENT_LIMIT)
    async def whip_patch(room: str, session_id: str) -> Response:
        return await session_patch(room, session_id, "publisher")

    @blueprint.patch("/api/whep/play/<room>/<session_id>")
    @body_limit(FRAGMENT_LIMIT)
    async def whep_patch(room: str, session_id: str) -> Response:
        return await session_patch(room, session_id, "viewer")

    @blueprint.get("/api/bootstrap")
    async def get_bootstrap() -> Response:
        await limit()
        return jsonify(bootstrap(settings, authorizer.enabled))

    @blueprint.get("/api/rooms")
    async def list_rooms() -> Response:
        await limit()
        return jsonify(live_service().list_rooms())

    def authorize_records() -> None:
        if not authorizer.records_ok(request.headers):
            raise ApiError(401, "unauthorized")

    @blueprint.get("/api/records")
    async def list_records() -> Response:
        await limit()
        authorize_records()
        return jsonify(records.list_records(settings.recordings_dir))

    @blueprint.get("/records/<name>")
    async def get_record(name: str) -> Response:
        authorize_records()
        path = records.find_record(settings.recordings_dir, name)
        if not settings.record_enabled or path is None:
            raise ApiError(404, "not found")
        served = records.served_range(request.headers.get("Range"), path.stat().st_size)
        if served is None:
            request.headers.pop("Range", None)
        else:
            request.headers["Range"] = served
        return await send_file(path, mimetype=records.mime_type(path), conditional=True)

    @blueprint.post("/api/admin/rooms/<room>/close")
    async def admin_close_room(room: str) -> Response:
        if not authorizer.admin_ok(request.headers):
            raise ApiError(401, "unauthorized")
        if not service.valid_room(room) or not await live_service().close_room(room):
            raise ApiError(404, "room not found")
        return Response("", status=200)

    @blueprint.get("/healthz")
    async def healthz() -> Response:
        return Response(service.health_text(), content_type="text/plain; charset=utf-8")

    @blueprint.get("/metrics")
    async def get_metrics() -> Response:
        state = gateway_state()
        registry = registries.get(id(state))
        if registry is None:
            registry = registries[id(state)] = metrics.build_registry(live_service())
        return Response(metrics.render(registry), content_type=metrics.CONTENT_TYPE)

    @blueprint.get("/web/")
    async def web_root() -> Response:
        return redirect("/web/index.html")  # type: ignore[return-value]

    @blueprint.get("/web/<path:name>")
    async def web_page(name: str) -> Response:
        try:
            response = await send_from_directory(WEB_DIR, name)
        except OSError:  # a name the filesystem refuses (too long, ...) names no page
            raise ApiError(404, "not found") from None
        response.headers["Cache-Control"] = "no-cache"
        return response

    return blueprint
