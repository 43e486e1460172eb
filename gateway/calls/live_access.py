"""Which Calls apps may pull which live (WHIP) rooms as `sessionId: "live:<room>"`.

A room the live-rooms API protects (its `ROOM_TOKENS` entry, else `AUTH_TOKEN`, else
`JWT_SECRET`: `Authorizer.protects`) is pulled only by apps `CALLS_LIVE_ROOMS` grants it to;
an open room stays open to every app, as it is to every WHEP player.
"""

from __future__ import annotations

from gateway.live.auth import Authorizer
from gateway.settings import Settings

ALL_ROOMS = "*"


class LiveRoomAccess:
    def __init__(self, settings: Settings) -> None:
        self._authorizer = Authorizer(settings)
        self._grants = settings.calls_live_rooms

    def may_pull(self, app_id: str, room: str) -> bool:
        if not self._authorizer.protects(room):
            return True
        granted = self._grants.get(app_id, frozenset())
        return ALL_ROOMS in granted or room in granted
