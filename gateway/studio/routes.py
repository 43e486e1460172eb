from __future__ import annotations

from quart import Blueprint, Response, jsonify

from gateway.settings import Settings
from gateway.state import gateway_state
from gateway.studio import service
from gateway.studio.schemas import health_body


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("studio", __name__)

    @blueprint.get("/v1/health")
    async def health() -> Response:
        return jsonify(health_body(service.write_enabled(settings)))

    @blueprint.get("/v1/openapi.json")
    async def openapi() -> Response:
        return jsonify(gateway_state().specs.get("studio"))

    return blueprint
