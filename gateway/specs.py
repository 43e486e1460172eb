"""Our OpenAPI documents (and the Punch message schema), loaded from `specs/` and served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from gateway.paths import SPECS_DIR

SPEC_FILES = {
    "brokerage": "brokerage.openapi.yaml",
    "host": "host.openapi.json",
    "live": "live.openapi.yaml",
    "calls": "calls.openapi.yaml",
    "studio": "studio.openapi.yaml",
    "punch-messages": "punch-messages.schema.json",
}


class SpecStore:
    """Parses each document once, on first use."""

    def __init__(self, directory: Path = SPECS_DIR) -> None:
        self.directory = directory
        self._loaded: dict[str, dict[str, Any]] = {}

    def names(self) -> list[str]:
        return list(SPEC_FILES)

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._loaded:
            path = self.directory / SPEC_FILES[name]
            text = path.read_text(encoding="utf-8")
            parsed = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            self._loaded[name] = parsed
        return self._loaded[name]
