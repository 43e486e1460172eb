"""Live-rooms response shapes, as upstream: JSON `{error}`, but plain text for 401 and 429."""

from __future__ import annotations

from quart import Response

from gateway.errors import ApiError, json_error, text_error
from gateway.settings import Settings

PLAIN_TEXT_STATUSES = {401: "unauthorized", 429: "too many requests"}


def render_error(error: ApiError) -> Response:
    if error.status in PLAIN_TEXT_STATUSES:
        return text_error(PLAIN_TEXT_STATUSES[error.status], error)
    return json_error({"error": error.message}, error)


def ice_servers(settings: Settings) -> list[dict[str, object]]:
    """The configured STUN/TURN servers, as `/api/bootstrap` lists them."""
    servers: list[dict[str, object]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls:
        turn: dict[str, object] = {"urls": list(settings.turn_urls)}
        if settings.turn_username:
            turn["username"] = settings.turn_username
        if settings.turn_password and settings.turn_password.get_secret_value():
            turn["credential"] = settings.turn_password.get_secret_value()
        servers.append(turn)
    return servers


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ice_server_links(settings: Settings) -> list[str]:
    """One RFC 9725 `Link: <url>; rel="ice-server"` value per ICE server URL."""
    links = [f'<{url}>; rel="ice-server"' for url in settings.stun_urls]
    for url in settings.turn_urls:
        link = f'<{url}>; rel="ice-server"'
        if settings.turn_username:
            link += f"; username={_quoted(settings.turn_username)}"
        if settings.turn_password and settings.turn_password.get_secret_value():
            link += f"; credential={_quoted(settings.turn_password.get_secret_value())}"
            link += '; credential-type="password"'
        links.append(link)
    return links


def bootstrap(settings: Settings, auth_enabled: bool) -> dict[str, object]:
    return {
        "authEnabled": auth_enabled,
        "recordEnabled": settings.record_enabled,
        "iceServers": ice_servers(settings),
        "features": {"rooms": True, "records": True},
    }
