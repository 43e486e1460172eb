"""Generic webhook platform: signed JSON POSTs out, signed JSON POSTs in.

Out: `POST <url>` with the message as JSON (`type: "chat.message"`) and
`X-Mediagate-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>`.
In: the platform (or a bridge bot) POSTs `{"authorDisplayName", "text", "authorId"?}` to
`/v1/studios/<id>/chat/inbound/webhook`, signed the same way with the same secret; each
signed request is accepted once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from gateway.studio import signing
from gateway.studio.chat_adapters import (
    ChatEnvelope,
    ChatTarget,
    DeliveryFailed,
    InboundMessage,
    InboundRejected,
)

PLATFORM = "webhook"
TIMEOUT_SECONDS = 5.0
MAX_TEXT = 2000


class WebhookChatAdapter:
    platform = PLATFORM
    needs_url = True

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def deliver(self, target: ChatTarget, message: ChatEnvelope) -> None:
        if not target.url or not target.secret:
            raise DeliveryFailed("the webhook platform has no url or secret")
        body = json.dumps({"type": "chat.message", "data": message.as_json()}).encode()
        headers = {"Content-Type": "application/json",
                   signing.HEADER: signing.signature_header(target.secret, body),
                   "User-Agent": "mediagate-chat/1"}
        try:
            response = await self._http.post(target.url, content=body, headers=headers,
                                             timeout=TIMEOUT_SECONDS)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DeliveryFailed(f"could not reach the webhook: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"the webhook answered HTTP {response.status_code}")

    def parse_inbound(self, target: ChatTarget, headers: Mapping[str, str],
                      body: bytes) -> InboundMessage:
        signed_at = signing.verified_at(target.secret, body, headers.get(signing.HEADER)) \
            if target.secret else None
        if not target.secret or signed_at is None:
            raise InboundRejected(signing.REJECTED, unauthenticated=True)
        try:
            payload = json.loads(body)
        except ValueError:
            raise InboundRejected("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise InboundRejected("the body must be a JSON object")
        name, text, author = (payload.get("authorDisplayName"), payload.get("text"),
                              payload.get("authorId"))
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InboundRejected("authorDisplayName must be a non-empty string")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise InboundRejected(f"text must be a non-empty string of at most {MAX_TEXT}")
        if author is not None and (not isinstance(author, str) or len(author) > 200):
            raise InboundRejected("authorId must be a string")
        if "\x00" in name + text + (author or ""):
            raise InboundRejected("NUL characters are not allowed")
        # The canonical signature, however the header spelled it (order, extra v1 values).
        replay_key = signing.signature_header(target.secret, body, signed_at)
        return InboundMessage(name.strip(), text, author, replay_key, signed_at)
