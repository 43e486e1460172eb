"""The app factory: one Quart app, one blueprint per API at that API's native paths."""

from __future__ import annotations

import gc
import json
import logging
import time

from quart import Blueprint, Quart, Response, g, jsonify, request

from gateway import brokerage, calls, host, live, studio
from gateway.apis import ApiMount
from gateway.bodylimit import drain_unread_bodies, install_body_limit
from gateway.bus import create_bus
from gateway.clientip import request_client_ip
from gateway.db import Database
from gateway.egress import EgressPolicy
from gateway.errors import ApiError, ErrorRouting, install_error_handlers, plain_json_error
from gateway.instance import register_instance
from gateway.keys import load_or_create_secret
from gateway.logs import Redactor, loggable_path
from gateway.media_setup import create_media_core
from gateway.pathlimit import install_path_limit
from gateway.placement import Placement
from gateway.requestid import current_request_id, install_request_ids
from gateway.settings import Settings
from gateway.specs import SPEC_FILES, SpecStore
from gateway.state import EXTENSION, GatewayState

MOUNTS: tuple[ApiMount, ...] = (
    brokerage.MOUNT,
    host.MOUNT,
    live.MOUNT,
    calls.MOUNT,
    studio.MOUNT,
)
SPEC_PATH_PREFIX = "/openapi/"
READINESS_PATH = "/readyz"

access_log = logging.getLogger("mediagate.access")


def create_app(settings: Settings) -> Quart:
    app = Quart("mediagate")
    secret = load_or_create_secret(
        settings.data_dir,
        settings.secret_key.get_secret_value() if settings.secret_key else None,
    )
    redactor = Redactor(settings.secret_values())
    redactor.add(secret.value.decode())
    db = Database(settings.database_url)
    state = GatewayState(
        settings=settings,
        db=db,
        secret=secret,
        redactor=redactor,
        specs=SpecStore(),
        media=create_media_core(settings),
        bus=create_bus(settings.database_url),
        placement=Placement(db, settings.replica_url),
        egress=EgressPolicy.from_cidrs(settings.egress_allow),
    )
    app.extensions[EXTENSION] = state

    install_request_ids(app)
    install_path_limit(app)
    install_body_limit(app, settings.max_body_bytes)
    _install_access_log(app)

    routing = ErrorRouting(default=plain_json_error)
    for mount in MOUNTS:
        for url_prefix in mount.url_prefixes:
            app.register_blueprint(
                mount.create_blueprint(settings),
                url_prefix=url_prefix or None,
                name=f"{mount.name}{url_prefix.replace('/', '_')}",
            )
        routing.add(mount.render_error, prefixes=mount.prefixes, exact=mount.exact_paths)
    install_error_handlers(app, routing)
    app.register_blueprint(_specs_blueprint())
    app.register_blueprint(_readiness_blueprint())
    app.asgi_app = drain_unread_bodies(app.asgi_app)  # type: ignore[method-assign]

    @app.before_serving
    async def _start() -> None:
        state.instance_id = await register_instance(state.db, state.secret)
        await state.placement.reset()
        await state.media.start()
        for mount in MOUNTS:
            if mount.start is not None:
                await mount.start(state)
        # Everything imported and built so far lives as long as the process: keep it out of
        # the cyclic GC, whose full passes over it stalled the event loop for 50-150 ms.
        gc.freeze()

    @app.after_serving
    async def _stop() -> None:
        for hook in reversed(state.stop_hooks):
            await hook()
        for mount in reversed(MOUNTS):
            if mount.stop is not None:
                await mount.stop(state)
        await state.media.stop()
        await state.bus.close()
        await state.db.close()

    return app


def _install_access_log(app: Quart) -> None:
    @app.before_request
    async def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    async def _log(response: Response) -> Response:
        elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access_log.info(
            "%s %s %s %.1fms",
            request.method,
            loggable_path(request.full_path.rstrip("?")),
            response.status_code,
            elapsed_ms,
            extra={"request_id": current_request_id(), "client": request_client_ip()},
        )
        return response


def _readiness_blueprint() -> Blueprint:
    """`GET /readyz`: 200 while this replica takes new work; 503 when draining or the
    database is unreachable. (Liveness is each API's own health endpoint.)"""
    blueprint = Blueprint("readiness", __name__)

    @blueprint.get(READINESS_PATH)
    async def readyz() -> Response:
        from sqlalchemy import text

        from gateway.state import gateway_state

        state = gateway_state()
        if state.draining:
            return Response(json.dumps({"status": "draining"}), status=503,
                            content_type="application/json")
        try:
            async with state.db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return Response(json.dumps({"status": "database unavailable"}), status=503,
                            content_type="application/json")
        return jsonify({"status": "ready"})

    return blueprint


def _specs_blueprint() -> Blueprint:
    """`GET /openapi/<api>.json` for each API, and the Punch message schema."""
    blueprint = Blueprint("specs", __name__)

    @blueprint.get(f"{SPEC_PATH_PREFIX}<name>.json")
    async def spec(name: str) -> Response:
        from gateway.state import gateway_state

        name = name.removesuffix(".schema")
        if name not in SPEC_FILES:
            raise ApiError(404, "no such document")
        return jsonify(gateway_state().specs.get(name))

    return blueprint
