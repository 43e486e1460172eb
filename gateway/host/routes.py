from __future__ import annotations

from quart import Blueprint, Response, jsonify

from gateway.host import service
from gateway.host.schemas import health_body
from gateway.settings import Settings


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("host", __name__)

    @blueprint.get("/api/v1/health")
    async def health() -> Response:
        return jsonify(health_body(service.host_version()))

    return blueprint
