"""Studio part 2 HTTP routes (media library; chat, webhooks, connections as they land).

`register(blueprint, settings)` adds them to part 1's blueprint, so they share its CORS,
error envelope, scope checks and per-key rate limit.
"""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, request

from gateway.bodylimit import body_limit
from gateway.errors import ApiError
from gateway.settings import Settings
from gateway.state import gateway_state
from gateway.studio import schemas, schemas_part2
from gateway.studio.auth import check_write_enabled, principal, require
from gateway.studio.library import StudioLibrary, UploadRefused
from gateway.studio.routes import _json_body, _next_cursor, _page_args, domain_errors


def library() -> StudioLibrary:
    return gateway_state().services["studio.library"]


def _base_url() -> str:
    configured = gateway_state().settings.public_url
    return (configured or request.host_url).rstrip("/")


def register(blueprint: Blueprint, settings: Settings) -> None:
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
        url = f"{_base_url()}/v1/media/{asset.id}/upload?{query}"
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
