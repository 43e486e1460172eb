"""A URL converter for a path segment that must not swallow a static sibling route.

`/apps/<a>/sessions/new` (POST) and `/apps/<a>/sessions/<session_id>` (GET) both match
`.../sessions/new`, so `OPTIONS` (and a 405's `Allow`) would advertise the id route's GET for
the static path. Writing the id as `<other_than(new):session_id>` keeps the two apart.
"""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint
from werkzeug.routing import BaseConverter, Map

NAME = "other_than"


class OtherThanConverter(BaseConverter):
    """One path segment, any but the words given: `<other_than(new, providers):name>`."""

    def __init__(self, map: Map, *words: str, **kwargs: Any) -> None:
        super().__init__(map, **kwargs)
        excluded = "|".join(re.escape(word) for word in words)
        self.regex = f"(?!(?:{excluded})$)[^/]+"


def use_other_than(blueprint: Blueprint) -> None:
    """Make `other_than` available to the blueprint's routes (call before adding them)."""
    blueprint.record_once(
        lambda state: state.app.url_map.converters.setdefault(NAME, OtherThanConverter))
