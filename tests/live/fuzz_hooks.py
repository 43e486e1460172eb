"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): send SDP bodies as text."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/sdp", "application/trickle-ice-sdpfrag")
def sdp_text(ctx: Any, value: Any) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else str(value).encode()
