"""Studio part 2 request/response shapes: media library (chat, webhooks as they land)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from gateway.studio.models_part2 import StudioMediaAsset
from gateway.studio.schemas import Name, NoNul, _Body, _compact, iso

Filename = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
                     NoNul]
ContentType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                               max_length=100), NoNul]


class CreateMediaUpload(_Body):
    filename: Filename
    contentType: ContentType
    byteSize: Annotated[int, Field(ge=1)]
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
