from __future__ import annotations

from quart import Blueprint, Response, jsonify

from gateway.brokerage import service
from gateway.brokerage.schemas import PUNCH_VERSION_HEADER, health_body
from gateway.settings import Settings


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("brokerage", __name__)

    @blueprint.route("/api/health", methods=["GET", "HEAD"])
    async def health() -> Response:
        version = service.service_version()
        response = jsonify(health_body(version))
        response.headers[PUNCH_VERSION_HEADER] = version
        return response

    return blueprint
