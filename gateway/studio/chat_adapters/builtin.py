"""The gateway's own chat: a page per studio, fed live from the message store.

Delivery is the store itself (the page follows it over server-sent events), so `deliver`
has nothing left to do; viewers write through the page's own route, not `parse_inbound`.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.studio.chat_adapters import ChatEnvelope, ChatTarget, InboundMessage, InboundRejected

PLATFORM = "mediagate"


class BuiltinChatAdapter:
    platform = PLATFORM
    needs_url = False

    async def deliver(self, target: ChatTarget, message: ChatEnvelope) -> None:
        return None

    def parse_inbound(self, target: ChatTarget, headers: Mapping[str, str],
                      body: bytes) -> InboundMessage:
        raise InboundRejected("the built-in chat takes messages from its page only",
                              unauthenticated=True)
