"""The brokerage's domain error: an HTTP status plus the Punch `ErrorCode`."""

from __future__ import annotations

from collections.abc import Mapping


class PunchError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_found(name: str) -> PunchError:
    return PunchError(404, "SESSION_EXPIRED", f"no session named {name!r}")


def expired(name: str) -> PunchError:
    return PunchError(404, "SESSION_EXPIRED", f"session {name!r} has expired or was closed")
