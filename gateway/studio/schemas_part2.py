"""Studio part 2 request/response shapes: media library, chat, webhooks."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from gateway.studio.chat import PlatformView, envelope
from gateway.studio.models_part2 import (
    StudioChatMessage,
    StudioConnection,
    StudioMediaAsset,
    StudioWebhook,
)
from gateway.studio.schemas import Name, NoNul, Url, _Body, _compact, iso

Filename = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
                     NoNul]
ContentType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                               max_length=100), NoNul]


def _integral(value: Any) -> Any:
    """JSON has one number type: 5.0 is the integer 5 (as JSON Schema's `integer` says)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class CreateMediaUpload(_Body):
    filename: Filename
    contentType: ContentType
    byteSize: Annotated[int, BeforeValidator(_integral), Field(ge=1)]
    folder: Name | None = None


def media_asset_body(asset: StudioMediaAsset) -> dict[str, Any]:
    return _compact({
        "id": asset.id,
        "filename": asset.filename,
        "folder": asset.folder,
        "contentType": asset.content_type,
        "byteSize": asset.byte_size,
        "kind": asset.kind,
        "status": asset.status,
        "statusReason": asset.status_reason,
        "objectKey": asset.object_key,
        "createdAt": iso(asset.created_at),
        "updatedAt": iso(asset.updated_at),
    })


def media_upload_body(asset: StudioMediaAsset, upload_url: str) -> dict[str, Any]:
    return {"assetId": asset.id, "kind": asset.kind, "objectKey": asset.object_key,
            "uploadUrl": upload_url, "contentType": asset.content_type,
            "byteSize": asset.byte_size}


# -- chat -------------------------------------------------------------------------------------

ChatText = Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]
PlatformName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=60), NoNul]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=500), NoNul]
DeliveryUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://."), NoNul]
"""Where webhooks and chat platforms are POSTed: as sent (no trimming), then egress-checked."""


class SendChatMessage(_Body):
    text: ChatText
    platforms: Annotated[list[PlatformName], Field(max_length=20)] | None = None


class ViewerChatMessage(_Body):
    authorDisplayName: Name
    text: ChatText


class ConfigureChatPlatform(_Body):
    enabled: bool | None = None
    url: DeliveryUrl | None = None
    secret: Secret | None = None


def chat_message_body(message: StudioChatMessage) -> dict[str, Any]:
    body: dict[str, Any] = {**envelope(message).as_json(), "direction": message.direction}
    body.pop("studioId")
    if message.deliveries is not None:
        body["deliveries"] = json.loads(message.deliveries)
    return body


def chat_platform_body(view: PlatformView, page_url: str | None) -> dict[str, Any]:
    return _compact({"platform": view.platform, "enabled": view.enabled, "url": view.url,
                     "hasSecret": view.has_secret, "pageUrl": page_url})


# -- webhooks ---------------------------------------------------------------------------------


class CreateWebhook(_Body):
    url: DeliveryUrl
    events: Annotated[list[PlatformName], Field(min_length=1, max_length=10)]
    secret: Secret
    enabled: bool | None = None


def webhook_body(webhook: StudioWebhook) -> dict[str, Any]:
    return _compact({
        "id": webhook.id, "url": webhook.url, "events": webhook.events.split(),
        "enabled": webhook.enabled, "hasSecret": True, "createdAt": iso(webhook.created_at),
        "lastStatus": webhook.last_status, "failures": webhook.failures,
    })


# -- connections ------------------------------------------------------------------------------


class CreateManualConnection(_Body):
    connectionType: Annotated[str, StringConstraints(pattern=r"^manual$")]
    platform: PlatformName
    displayName: Name
    rtmpUrl: Url
    streamKey: Annotated[str, StringConstraints(min_length=1, max_length=500), NoNul]


class StartOAuthLink(_Body):
    redirectTo: Url | None = None


def connection_body(connection: StudioConnection) -> dict[str, Any]:
    return _compact({
        "id": connection.id,
        "platform": connection.platform,
        "connectionType": connection.connection_type,
        "displayName": connection.display_name,
        "externalUserId": connection.external_user_id,
        "avatarUrl": connection.avatar_url,
        "grantedScopes": connection.granted_scopes.split()
        if connection.granted_scopes is not None else None,
        "status": connection.status,
        "expiresAt": iso(connection.expires_at),
        "connectedAt": iso(connection.connected_at),
        "updatedAt": iso(connection.updated_at),
        "rtmpUrl": connection.rtmp_url,
        "hasStreamKey": True if connection.stream_key_sealed is not None else None,
    })
