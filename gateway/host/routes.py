"""punktfunk management routes: parse, authorize, call the host service, render."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, Response, jsonify, request

from gateway.errors import ApiError
from gateway.host import console, service
from gateway.host.auth import bearer_matches
from gateway.host.capture import RecordingError
from gateway.host.schemas import (
    check_fingerprint,
    health_body,
    parse_approve,
    parse_arm,
    parse_custom_input,
    parse_pin,
)
from gateway.host.service import HostService, NotFound, custom_entry, native_client_body
from gateway.jsonbody import InvalidJson, parse_json
from gateway.settings import Settings
from gateway.state import gateway_state

PREFIX = "/api/v1"
OPEN_PATHS = {f"{PREFIX}/health", f"{PREFIX}/console"}


def host_service() -> HostService:
    found = gateway_state().services.get("host")
    if found is None:
        raise ApiError(503, "host management is starting")
    return found


async def json_body() -> Any:
    """Upstream's write rules: JSON content type (415), parseable body (400)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "expected Content-Type: application/json")
    try:
        return parse_json(await request.get_data())
    except InvalidJson:
        raise ApiError(400, "request body is not valid JSON") from None


def no_content() -> Response:
    return Response(status=204)


def ok(body: object, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _native(svc: HostService) -> Any:
    if svc.native is None or not svc.native.enabled:
        raise ApiError(503, "native host not enabled")
    return svc.native


def _pending_id(raw: str) -> int:
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        raise ApiError(404, "no pending request with that id")
    return int(raw)


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("host", __name__)

    @blueprint.before_request
    async def _authorize() -> None:
        if request.path in OPEN_PATHS or request.method == "OPTIONS":
            return
        token = host_service().token
        if token is not None and not bearer_matches(request.headers.get("Authorization"), token):
            raise ApiError(401, "missing or invalid bearer token",
                           headers={"WWW-Authenticate": 'Bearer realm="punktfunk"'})

    @blueprint.get(f"{PREFIX}/health")
    async def health() -> Response:
        return jsonify(health_body(service.host_version()))

    @blueprint.get(f"{PREFIX}/console")
    async def console_page() -> Response:
        return Response(console.PAGE, content_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": console.CSP})

    # -- host ---------------------------------------------------------------------------

    @blueprint.get(f"{PREFIX}/host")
    async def host_info() -> Response:
        return ok(host_service().host_info())

    @blueprint.get(f"{PREFIX}/status")
    async def status() -> Response:
        return ok(await host_service().status())

    @blueprint.get(f"{PREFIX}/compositors")
    async def list_compositors() -> Response:
        return ok(host_service().compositors())

    # -- GameStream clients and pairing -------------------------------------------------

    @blueprint.get(f"{PREFIX}/clients")
    async def list_clients() -> Response:
        rows = await host_service().store.paired_clients()
        return ok([service.paired_client_body(row) for row in rows])

    @blueprint.delete(f"{PREFIX}/clients/<fingerprint>")
    async def unpair_client(fingerprint: str) -> Response:
        if not await host_service().store.unpair_client(check_fingerprint(fingerprint)):
            raise ApiError(404, "no paired client with that fingerprint")
        return no_content()

    @blueprint.get(f"{PREFIX}/pair")
    async def pairing_status() -> Response:
        pairing = host_service().pairing
        return ok({"pin_pending": bool(pairing and pairing.pin_pending)})

    @blueprint.post(f"{PREFIX}/pair/pin")
    async def submit_pin() -> Response:
        pin = parse_pin(await json_body())
        pairing = host_service().pairing
        if pairing is None or not pairing.submit_pin(pin):
            raise ApiError(409, "no pairing handshake is waiting for a PIN")
        return no_content()

    # -- native pairing -----------------------------------------------------------------

    @blueprint.get(f"{PREFIX}/native/pair")
    async def native_status() -> Response:
        svc = host_service()
        paired = len(await svc.store.native_clients())
        if svc.native is None or not svc.native.enabled:
            return ok({"enabled": False, "armed": False, "expires_in_secs": None,
                       "paired_clients": paired, "pin": None})
        return ok(svc.native.status(paired))

    @blueprint.post(f"{PREFIX}/native/pair/arm")
    async def native_arm() -> Response:
        ttl = parse_arm(await json_body())
        svc = host_service()
        native = _native(svc)
        native.arm(ttl)
        return ok(native.status(len(await svc.store.native_clients())))

    @blueprint.delete(f"{PREFIX}/native/pair")
    async def native_disarm() -> Response:
        _native(host_service()).disarm()
        return no_content()

    @blueprint.get(f"{PREFIX}/native/clients")
    async def native_clients() -> Response:
        rows = await host_service().store.native_clients()
        return ok([native_client_body(row) for row in rows])

    @blueprint.delete(f"{PREFIX}/native/clients/<fingerprint>")
    async def native_unpair(fingerprint: str) -> Response:
        svc = host_service()
        _native(svc)
        fingerprint = fingerprint.lower()
        if len(fingerprint) != 64 or not await svc.store.unpair_native(fingerprint):
            raise ApiError(404, "no paired native client with that fingerprint")
        return no_content()

    @blueprint.get(f"{PREFIX}/native/pending")
    async def native_pending() -> Response:
        svc = host_service()
        if svc.native is None or not svc.native.enabled:
            return ok([])
        return ok([service.pending_body(row) for row in await svc.store.pending()])

    @blueprint.post(f"{PREFIX}/native/pending/<raw_id>/approve")
    async def native_approve(raw_id: str) -> Response:
        name = parse_approve(await json_body())
        svc = host_service()
        _native(svc)
        try:
            row = await svc.store.approve(_pending_id(raw_id), name)
        except NotFound as exc:
            raise ApiError(404, str(exc)) from None
        return ok(native_client_body(row))

    @blueprint.post(f"{PREFIX}/native/pending/<raw_id>/deny")
    async def native_deny(raw_id: str) -> Response:
        svc = host_service()
        _native(svc)
        try:
            await svc.store.deny(_pending_id(raw_id))
        except NotFound as exc:
            raise ApiError(404, str(exc)) from None
        return no_content()

    # -- library ------------------------------------------------------------------------

    @blueprint.get(f"{PREFIX}/library")
    async def library() -> Response:
        return ok(await host_service().library())

    @blueprint.post(f"{PREFIX}/library/custom")
    async def create_custom() -> Response:
        data = parse_custom_input(await json_body())
        row = await host_service().store.create_custom(data)
        return ok(custom_entry(row), 201)

    @blueprint.put(f"{PREFIX}/library/custom/<game_id>")
    async def update_custom(game_id: str) -> Response:
        data = parse_custom_input(await json_body())
        try:
            row = await host_service().store.update_custom(game_id, data)
        except NotFound as exc:
            raise ApiError(404, str(exc)) from None
        return ok(custom_entry(row))

    @blueprint.delete(f"{PREFIX}/library/custom/<game_id>")
    async def delete_custom(game_id: str) -> Response:
        try:
            await host_service().store.delete_custom(game_id)
        except NotFound as exc:
            raise ApiError(404, str(exc)) from None
        return no_content()

    # -- session control ----------------------------------------------------------------

    @blueprint.delete(f"{PREFIX}/session")
    async def stop_session() -> Response:
        await host_service().stop_sessions()
        return no_content()

    @blueprint.post(f"{PREFIX}/session/idr")
    async def request_idr() -> Response:
        if not host_service().request_idr():
            raise ApiError(409, "No active video stream")
        return Response(status=202)

    # -- stats capture ------------------------------------------------------------------

    @blueprint.post(f"{PREFIX}/stats/capture/start")
    async def capture_start() -> Response:
        return ok(await host_service().recorder.start())

    @blueprint.get(f"{PREFIX}/stats/capture/status")
    async def capture_status() -> Response:
        return ok(host_service().recorder.status())

    @blueprint.get(f"{PREFIX}/stats/capture/live")
    async def capture_live() -> Response:
        live = host_service().recorder.live()
        if live is None:
            raise ApiError(404, "no capture is currently recording")
        return ok(live)

    @blueprint.post(f"{PREFIX}/stats/capture/stop")
    async def capture_stop() -> Response:
        try:
            meta = await host_service().recorder.stop()
        except RecordingError as exc:
            raise ApiError(500, str(exc)) from None
        return no_content() if meta is None else ok(meta)

    @blueprint.get(f"{PREFIX}/stats/recordings")
    async def recordings() -> Response:
        return ok(await asyncio.to_thread(host_service().recorder.list))

    @blueprint.get(f"{PREFIX}/stats/recordings/<recording_id>")
    async def recording(recording_id: str) -> Response:
        try:
            body = await asyncio.to_thread(host_service().recorder.get, recording_id)
        except RecordingError as exc:
            raise ApiError(500, str(exc)) from None
        if body is None:
            raise ApiError(404, "no recording with that id")
        return ok(body)

    @blueprint.delete(f"{PREFIX}/stats/recordings/<recording_id>")
    async def delete_recording(recording_id: str) -> Response:
        try:
            deleted = host_service().recorder.delete(recording_id)
        except RecordingError as exc:
            raise ApiError(500, str(exc)) from None
        if not deleted:
            raise ApiError(404, "no recording with that id")
        return no_content()

    return blueprint
