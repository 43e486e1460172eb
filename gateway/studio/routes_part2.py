"""Studio part 2 HTTP routes: media library, unified chat (+ its page), webhooks, connections.

`register(blueprint, settings)` adds them to part 1's blueprint, so they share its CORS,
error envelope, scope checks and per-key rate limit.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from quart import Blueprint, Response, jsonify, request

from gateway.bodylimit import body_limit
from gateway.clientip import request_client_ip
from gateway.errors import ApiError
from gateway.pagination import PaginationError, parse_limit
from gateway.ratelimit import enforce
from gateway.routing import use_other_than
from gateway.settings import Settings
from gateway.state import gateway_state
from gateway.studio import schemas, schemas_part2
from gateway.studio.auth import check_write_enabled, principal, require
from gateway.studio.chat import BUILTIN, ChatService
from gateway.studio.chat_adapters import InboundRejected
from gateway.studio.chat_page import render as chat_page_html
from gateway.studio.connections import ConnectionService, LinkFailed
from gateway.studio.library import StudioLibrary, UploadRefused
from gateway.studio.routes import _json_body, _next_cursor, _page_args, domain_errors
from gateway.studio.webhooks import WebhookService

HISTORY = 50
KEEPALIVE_EVERY = 15  # quiet seconds between SSE comments


def library() -> StudioLibrary:
    return gateway_state().services["studio.library"]


def _base_url() -> str:
    configured = gateway_state().settings.public_url
    return (configured or request.host_url).rstrip("/")


def register(blueprint: Blueprint, settings: Settings) -> None:
    register_media(blueprint)
    register_chat(blueprint)
    register_webhooks(blueprint)
    register_connections(blueprint)


def register_media(blueprint: Blueprint) -> None:
    @blueprint.get("/v1/media")
    @require("media:read")
    async def list_media() -> Response:
        after, limit = _page_args()
        page = await library().list_assets(principal().owner, after, limit)
        return jsonify(schemas.page_body(
            [schemas_part2.media_asset_body(a) for a in page.items], _next_cursor(page)
        ))

    @blueprint.post("/v1/media")
    @require("media:write", write=True)
    @domain_errors
    async def create_media_upload() -> tuple[Response, int]:
        body = schemas.parse_body(schemas_part2.CreateMediaUpload, await _json_body())
        asset, query = await library().create_upload(
            principal().owner, body.filename, body.contentType, body.byteSize, body.folder
        )
        url = (f"{_base_url()}/v1/media/{asset.id}/upload?{query}" if query is not None
               else await library().presigned_put(asset))
        return jsonify(schemas_part2.media_upload_body(asset, url)), 201

    @blueprint.put("/v1/media/<asset_id>/upload")
    @body_limit(None)
    async def upload_media(asset_id: str) -> Response:
        # The signed URL is the credential: no API key, like a presigned object-store PUT.
        check_write_enabled()
        try:
            asset = await library().receive(
                asset_id, request.args.get("expires"), request.args.get("signature"),
                request.headers.get("Content-Type", ""), request.content_length,
                aiter(request.body),
            )
        except UploadRefused as exc:
            raise ApiError(exc.status, exc.message, code=exc.code) from None
        return jsonify({"ok": True, "assetId": asset.id, "byteSize": asset.byte_size})


def chat() -> ChatService:
    return gateway_state().services["studio.chat"]


def webhooks() -> WebhookService:
    return gateway_state().services["studio.webhooks"]


def _chat_urls(studio_id: str) -> tuple[str, str, str]:
    """(page, events, viewer-post) URLs of the built-in chat, with the viewer token."""
    token = chat().viewer_token(studio_id)
    base = f"{_base_url()}/v1/studios/{studio_id}/chat"
    return (f"{base}/page?token={token}", f"{base}/events?token={token}",
            f"{base}/viewer-messages?token={token}")


async def _limit_by_address(studio_id: str) -> None:
    limiter = gateway_state().services["studio.chat.ratelimit"]
    await enforce(limiter, f"{request_client_ip()}/{studio_id}",
                  message="too many chat messages from this address", code="rate_limited")


async def _viewer_studio(studio_id: str) -> None:
    """The built-in chat's routes take the viewer token, and only while it is enabled."""
    if not chat().check_viewer_token(studio_id, request.args.get("token")):
        raise ApiError(401, "missing or invalid chat viewer token", code="invalid_key")
    await chat().studio(studio_id)
    if not await chat().builtin_enabled(studio_id):
        raise ApiError(404, "the built-in chat is disabled for this studio", code="not_found")


def register_chat(blueprint: Blueprint) -> None:
    @blueprint.get("/v1/studios/<studio_id>/chat/messages")
    @require("chat:read")
    @domain_errors
    async def list_chat_messages(studio_id: str) -> Response:
        try:
            limit = parse_limit(request.args.get("limit"))
        except PaginationError as exc:
            raise ApiError(400, str(exc), code="invalid_request") from None
        messages = await chat().recent(principal().owner, studio_id, limit)
        return jsonify({"data": [schemas_part2.chat_message_body(m) for m in messages]})

    @blueprint.post("/v1/studios/<studio_id>/chat/messages")
    @require("chat:send", write=True)
    @domain_errors
    async def send_chat_message(studio_id: str) -> tuple[Response, int]:
        body = schemas.parse_body(schemas_part2.SendChatMessage, await _json_body())
        message, deliveries = await chat().send(principal().owner, studio_id, body.text,
                                                body.platforms)
        return jsonify({"ok": True, "messageId": message.id,
                        "deliveries": [d.as_json() for d in deliveries]}), 201

    @blueprint.get("/v1/studios/<studio_id>/chat/platforms")
    @require("chat:read")
    @domain_errors
    async def list_chat_platforms(studio_id: str) -> Response:
        views = await chat().platforms(principal().owner, studio_id)
        page_url = _chat_urls(studio_id)[0]
        return jsonify({"data": [schemas_part2.chat_platform_body(
            v, page_url if v.platform == BUILTIN else None) for v in views]})

    @blueprint.put("/v1/studios/<studio_id>/chat/platforms/<platform>")
    @require("studios:write", write=True)
    @domain_errors
    async def configure_chat_platform(studio_id: str, platform: str) -> Response:
        body = schemas.parse_body(schemas_part2.ConfigureChatPlatform, await _json_body())
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        view = await chat().configure(principal().owner, studio_id, platform, changes)
        page_url = _chat_urls(studio_id)[0] if platform == BUILTIN else None
        return jsonify(schemas_part2.chat_platform_body(view, page_url))

    @blueprint.post("/v1/studios/<studio_id>/chat/inbound/<platform>")
    @body_limit(64 * 1024)
    @domain_errors
    async def inbound_chat_message(studio_id: str, platform: str) -> tuple[Response, int]:
        check_write_enabled()
        await _limit_by_address(studio_id)
        try:
            message = await chat().receive_inbound(studio_id, platform, request.headers,
                                                   await request.get_data())
        except InboundRejected as exc:
            if exc.unauthenticated:
                raise ApiError(401, str(exc), code="invalid_key") from None
            raise ApiError(400, str(exc), code="invalid_request") from None
        return jsonify({"ok": True, "messageId": message.id}), 201

    # -- the built-in chat: a page, its live feed, and viewers' messages ------------------

    @blueprint.get("/v1/studios/<studio_id>/chat/page")
    @domain_errors
    async def chat_page(studio_id: str) -> Response:
        await _viewer_studio(studio_id)
        studio = await chat().studio(studio_id)
        _, events_url, post_url = _chat_urls(studio_id)
        response = Response(chat_page_html(studio.name, events_url, post_url),
                            content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.get("/v1/studios/<studio_id>/chat/events")
    @domain_errors
    async def chat_events(studio_id: str) -> Response:
        await _viewer_studio(studio_id)
        follow = chat().follow(studio_id, HISTORY)

        async def stream() -> AsyncIterator[bytes]:
            quiet = 0
            yield b"retry: 2000\n\n"
            async for message in follow:
                if message is None:
                    quiet += 1
                    if quiet % KEEPALIVE_EVERY == 0:
                        yield b": keep-alive\n\n"
                    continue
                data = json.dumps(schemas_part2.chat_message_body(message))
                yield f"id: {message.id}\nevent: message\ndata: {data}\n\n".encode()

        response = Response(stream(), content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Accel-Buffering"] = "no"
        response.timeout = None
        return response

    @blueprint.post("/v1/studios/<studio_id>/chat/viewer-messages")
    @domain_errors
    async def viewer_chat_message(studio_id: str) -> tuple[Response, int]:
        await _viewer_studio(studio_id)
        check_write_enabled()
        await _limit_by_address(studio_id)
        body = schemas.parse_body(schemas_part2.ViewerChatMessage, await _json_body())
        message = await chat().receive_from_page(studio_id, body.authorDisplayName, body.text)
        return jsonify({"ok": True, "messageId": message.id}), 201


def register_webhooks(blueprint: Blueprint) -> None:
    @blueprint.get("/v1/webhooks")
    @require("webhooks:manage")
    async def list_webhooks() -> Response:
        after, limit = _page_args()
        page = await webhooks().list(principal().owner, after, limit)
        return jsonify(schemas.page_body([schemas_part2.webhook_body(w) for w in page.items],
                                         _next_cursor(page)))

    @blueprint.post("/v1/webhooks")
    @require("webhooks:manage", write=True)
    @domain_errors
    async def create_webhook() -> tuple[Response, int]:
        body = schemas.parse_body(schemas_part2.CreateWebhook, await _json_body())
        webhook = await webhooks().create(principal().owner, body.url, body.events, body.secret,
                                          body.enabled if body.enabled is not None else True)
        return jsonify(schemas_part2.webhook_body(webhook)), 201

    @blueprint.delete("/v1/webhooks/<webhook_id>")
    @require("webhooks:manage", write=True)
    @domain_errors
    async def delete_webhook(webhook_id: str) -> Response:
        await webhooks().delete(principal().owner, webhook_id)
        return jsonify({"ok": True})


def connections() -> ConnectionService:
    return gateway_state().services["studio.connections"]


def _redirect_uri(platform: str) -> str:
    return f"{_base_url()}/v1/connections/oauth/{platform}/callback"


LINKED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Account linked</title></head>
<body><p>Linked your {platform} account <b>{name}</b>. You can close this window.</p></body>
</html>
"""


def register_connections(blueprint: Blueprint) -> None:
    # `providers` is a static sibling: OPTIONS on it must not advertise the id route's DELETE
    use_other_than(blueprint)

    @blueprint.get("/v1/connections")
    @require("connections:read")
    async def list_connections() -> Response:
        after, limit = _page_args()
        page = await connections().list(principal().owner, after, limit)
        return jsonify(schemas.page_body(
            [schemas_part2.connection_body(c) for c in page.items], _next_cursor(page)))

    @blueprint.post("/v1/connections")
    @require("connections:write", write=True)
    @domain_errors
    async def create_connection() -> tuple[Response, int]:
        body = schemas.parse_body(schemas_part2.CreateManualConnection, await _json_body())
        row = await connections().create_manual(principal().owner, body.platform,
                                                body.displayName, body.rtmpUrl, body.streamKey)
        return jsonify(schemas_part2.connection_body(row)), 201

    @blueprint.delete("/v1/connections/<other_than(providers):connection_id>")
    @require("connections:write", write=True)
    @domain_errors
    async def delete_connection(connection_id: str) -> Response:
        await connections().delete(principal().owner, connection_id)
        return jsonify({"ok": True})

    @blueprint.get("/v1/connections/providers")
    @require("connections:read")
    async def list_providers() -> Response:
        providers = gateway_state().settings.studio_oauth_providers
        return jsonify({"data": [
            {"platform": name, "displayName": config.display_name or name,
             "scopes": config.scopes}
            for name, config in sorted(providers.items())
        ]})

    @blueprint.post("/v1/connections/oauth/<platform>/start")
    @require("connections:write", write=True)
    @domain_errors
    async def start_oauth_link(platform: str) -> tuple[Response, int]:
        raw = await request.get_data()
        body = schemas.parse_body(schemas_part2.StartOAuthLink,
                                  await _json_body() if raw else {})
        url, expires_at = await connections().start_link(
            principal().owner, platform, _redirect_uri(platform), body.redirectTo)
        return jsonify({"authorizationUrl": url, "expiresAt": schemas.iso(expires_at)}), 201

    @blueprint.get("/v1/connections/oauth/<platform>/callback")
    @domain_errors
    async def oauth_callback(platform: str) -> Response:
        # The single-use `state` authenticates: it was issued to an API key's owner.
        check_write_enabled()
        try:
            row, redirect_to = await connections().finish_link(
                platform, request.args.get("state"), request.args.get("code"),
                request.args.get("error"), _redirect_uri(platform))
        except LinkFailed as exc:
            raise ApiError(400, str(exc), code="invalid_request") from None
        if redirect_to:
            separator = "&" if "?" in redirect_to else "?"
            response = Response("", status=302)
            response.headers["Location"] = (f"{redirect_to}{separator}"
                                            f"{urlencode({'connectionId': row.id})}")
            return response
        page = LINKED_PAGE.format(platform=html.escape(platform),
                                  name=html.escape(row.display_name))
        return Response(page, content_type="text/html; charset=utf-8")
