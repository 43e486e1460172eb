from __future__ import annotations

from quart import Blueprint, Response

from gateway.live import service
from gateway.settings import Settings


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("live", __name__)

    @blueprint.get("/healthz")
    async def healthz() -> Response:
        return Response(service.health_text(), content_type="text/plain; charset=utf-8")

    return blueprint
