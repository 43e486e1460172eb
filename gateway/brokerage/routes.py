from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from quart import Blueprint, Response, jsonify, request, websocket

from gateway.brokerage import pages, service
from gateway.brokerage.errors import PunchError
from gateway.brokerage.schemas import (
    PUNCH_VERSION_HEADER,
    api_error,
    created_body,
    health_body,
    parse_create,
    render_error,
    valid_name,
)
from gateway.brokerage.service import BrokerageService
from gateway.brokerage.signalling import GOING_AWAY, Signalling, error_message
from gateway.clientip import request_client_ip
from gateway.errors import ApiError
from gateway.jsonbody import json_body
from gateway.ratelimit import enforce, per_minute
from gateway.settings import Settings
from gateway.state import gateway_state

SERVICE_KEY = "brokerage"
log = logging.getLogger("mediagate.brokerage")


def brokerage() -> BrokerageService:
    return gateway_state().services[SERVICE_KEY]


def _token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get("t") or None


def _base_url() -> str:
    configured = gateway_state().settings.public_url
    return (configured or request.host_url).rstrip("/")


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("brokerage", __name__)
    creations = per_minute(settings.punch_rate_limit)

    @blueprint.errorhandler(PunchError)
    async def _punch_error(error: PunchError) -> Response:
        return render_error(api_error(error))

    @blueprint.route("/api/health", methods=["GET", "HEAD"])
    async def health() -> Response:
        version = service.service_version()
        response = jsonify(health_body(version))
        response.headers[PUNCH_VERSION_HEADER] = version
        return response

    @blueprint.post("/api/session")
    async def create_session() -> tuple[Response, int]:
        client = request_client_ip()
        await enforce(creations, client, message="too many sessions created; slow down",
                      code="RATE_LIMITED")
        parsed = parse_create(await json_body(), settings.punch_default_ttl)
        created = await brokerage().create_session(parsed, client)
        return jsonify(created_body(created, _base_url())), 201

    @blueprint.get("/api/session/<name>")
    async def get_session(name: str) -> Response:
        claims = brokerage().authorize(_token(), name)
        return jsonify(await brokerage().describe(name, claims))

    @blueprint.delete("/api/session/<name>")
    async def delete_session(name: str) -> Response:
        claims = brokerage().authorize(_token(), name, admin=True)
        await brokerage().delete_session(name, claims)
        return Response(status=204)

    @blueprint.get("/api/session/<name>/connect")
    async def connection_strings(name: str) -> Response:
        claims = brokerage().authorize(_token(), name)
        stream = request.args.get("stream") or None  # `?stream=` means the default
        if stream is not None and not valid_name(stream):
            raise PunchError(400, "INVALID_MESSAGE", "invalid stream name")
        role = request.args.get("role") or "sender"
        if role not in ("sender", "receiver"):
            raise PunchError(400, "INVALID_MESSAGE", "role must be sender or receiver")
        body = await brokerage().connection_strings(name, claims, stream, role)  # type: ignore[arg-type]
        return jsonify(body)

    @blueprint.get("/api/ws/<name>")
    async def websocket_without_upgrade(name: str) -> Response:
        raise ApiError(426, "this endpoint speaks WebSocket: send the upgrade headers",
                       code="INVALID_MESSAGE",
                       headers={"Upgrade": "websocket", "Connection": "Upgrade"})

    @blueprint.websocket("/api/ws/<name>")
    async def signalling_socket(name: str) -> Response | None:
        svc = brokerage()
        try:
            claims = svc.verify(websocket.args.get("t"))
            if claims.session != name:
                raise PunchError(401, "AUTH_FAILED", "token is for another session")
            signalling = Signalling(svc)
            connection = await signalling.open(
                name, claims, request_client_ip(), websocket.host.rsplit(":", 1)[0].strip("[]")
            )
        except PunchError as exc:
            if exc.status == 403:  # the WebSocket contract knows 401, not 403
                exc = PunchError(401, exc.code, exc.message)
            return render_error(api_error(exc))
        await websocket.accept()
        writer = asyncio.create_task(_pump(connection.outbox))
        receiver: asyncio.Future[str | bytes] | None = None
        try:
            while not writer.done():
                receiver = asyncio.ensure_future(websocket.receive())
                done, _ = await asyncio.wait({receiver, writer},
                                             return_when=asyncio.FIRST_COMPLETED)
                if receiver not in done:
                    break
                try:
                    await signalling.handle_text(connection, receiver.result())
                except Exception:
                    log.exception("signalling message failed on session %s", name)
                    connection.deliver(error_message("SERVER_ERROR", "internal error"))
        finally:
            # also when the client left and Quart cancels this handler: a pending
            # receive left behind is destroyed pending (logged as an error)
            for task in (receiver, writer):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await signalling.close(connection)
        return None

    @blueprint.get("/")
    async def landing() -> Response:
        return _html(pages.landing(turnstile=bool(settings.turnstile_secret)))

    @blueprint.get("/s/<name>")
    async def dashboard(name: str) -> Response:
        svc = brokerage()
        row = await _live_session(svc, name)
        admin = request.args.get("t")
        observer = False
        if admin:
            with contextlib.suppress(PunchError):
                observer = svc.authorize(admin, name, admin=True).is_admin
        streams = await svc.stream_names(name)
        peer_tokens = {stream: svc.mint(row, stream) for stream in streams}
        return _html(pages.dashboard(
            name, peer_tokens, admin_token=admin if observer else None,
            qr_url=f"/s/{name}/qr", dashboard_url=f"{_base_url()}/s/{name}",
        ))

    @blueprint.get("/s/<name>/qr")
    async def qr_code(name: str) -> Response:
        await _live_session(brokerage(), name)
        svg = pages.qr_svg(f"{_base_url()}/s/{name}")
        return Response(svg, content_type="image/svg+xml")

    return blueprint


async def _live_session(svc: BrokerageService, name: str) -> Any:
    if not valid_name(name):
        raise ApiError(404, "no such session", code="SESSION_EXPIRED")
    try:
        return await svc.live_session(name)
    except PunchError as exc:
        raise ApiError(404, exc.message, code=exc.code) from None


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="text/html; charset=utf-8")


async def _pump(outbox: asyncio.Queue[dict[str, Any]]) -> None:
    """Send queued messages; `state: CLOSED` is the last one, GOING_AWAY closes with 1001."""
    while True:
        message = await outbox.get()
        if message is GOING_AWAY:
            await websocket.close(1001, "server shutting down")
            return
        await websocket.send(json.dumps(message))
        if message.get("type") == "state" and message.get("state") == service.CLOSED:
            await websocket.close(1000, "session closed")
            return

