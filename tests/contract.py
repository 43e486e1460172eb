"""Validate a real response against the matching operation in `specs/`.

Usage from any test: `contract.check("live", "POST", "/api/whip/publish/demo", response)`
with an httpx response or a Quart test-client response. It finds the operation by path
template, picks the documented response for the status (exact, `4XX`-style, then
`default`), checks required headers, the media type, and validates the body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from openapi_schema_validator import OAS30Validator, OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from gateway.specs import SpecStore

SPEC_URI = "urn:mediagate:spec"


class ContractError(AssertionError):
    pass


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def as_reply(response: Any, body: bytes | None = None) -> Reply:
    """Adapt httpx / Quart test responses (pass `body` for Quart: it must be awaited)."""
    status = getattr(response, "status_code", None) or response.status
    headers = {k.lower(): v for k, v in response.headers.items()}
    if body is None:
        body = response.content
    return Reply(int(status), headers, body)


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass
class Operation:
    api: str
    template: str
    method: str
    spec: dict[str, Any]


class SpecContract:
    def __init__(self, api: str, document: dict[str, Any]) -> None:
        self.api = api
        self.document = document
        self.is_30 = str(document.get("openapi", "")).startswith("3.0")
        specification = DRAFT4 if self.is_30 else DRAFT202012
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(document, default_specification=specification)
        )
        self.base_paths = sorted(
            {
                server["url"].rstrip("/")
                for server in document.get("servers", [])
                if server.get("url", "").startswith("/")
            },
            key=len,
            reverse=True,
        )
        self._templates = [
            (template, re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$"))
            for template in document.get("paths", {})
        ]
        # literal paths win over templated ones
        self._templates.sort(key=lambda item: item[0].count("{"))

    def find(self, method: str, path: str) -> Operation:
        candidates = [path] + [
            path[len(base):] for base in self.base_paths if base and path.startswith(base + "/")
        ]
        for candidate in candidates:
            for template, pattern in self._templates:
                if pattern.match(candidate):
                    item = self.document["paths"][template]
                    op = item.get(method.lower())
                    if op is None and method.upper() == "HEAD":
                        op = item.get("get")
                    if op is None:
                        raise ContractError(f"{self.api}: {method} {template} is not in the spec")
                    return Operation(self.api, template, method.lower(), op)
        raise ContractError(f"{self.api}: no path in the spec matches {path}")

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def check(self, method: str, path: str, reply: Reply) -> Operation:
        op = self.find(method, path)
        responses = op.spec.get("responses", {})
        status = str(reply.status)
        key = next(
            (k for k in (status, f"{status[0]}XX", f"{status[0]}xx", "default") if k in responses),
            None,
        )
        if key is None:
            raise ContractError(
                f"{self.api}: {method} {op.template} answered {status}, "
                f"which the spec does not document ({sorted(responses)})"
            )
        response = self._resolve(responses[key])
        where = f"{self.api}: {method} {op.template} {status}"
        for name, header in response.get("headers", {}).items():
            header = self._resolve(header)
            value = reply.headers.get(name.lower())
            if value is None:
                if header.get("required"):
                    raise ContractError(f"{where}: required header {name} is missing")
                continue
            schema = header.get("schema", {})
            if schema.get("type") == "integer" and not re.fullmatch(r"-?\d+", value):
                raise ContractError(f"{where}: header {name}={value!r} is not an integer")
        content = response.get("content")
        if not content or method.upper() == "HEAD":
            return op
        media_types = {mt.split(";")[0].strip().lower(): mt for mt in content}
        actual = reply.content_type
        chosen = media_types.get(actual)
        if chosen is None and "*/*" in media_types:
            chosen = media_types["*/*"]
        if chosen is None:
            raise ContractError(
                f"{where}: content type {actual!r} is not one of {sorted(media_types)}"
            )
        schema_pointer = _pointer("paths", op.template, op.method, "responses", key)
        media = content[chosen]
        if "$ref" in responses[key]:
            schema_pointer = responses[key]["$ref"][2:]
        if "schema" not in media:
            return op
        if actual.endswith("json"):
            try:
                instance = json.loads(reply.body)
            except ValueError as exc:
                raise ContractError(f"{where}: body is not JSON: {reply.body[:200]!r}") from exc
        else:
            instance = reply.body.decode("utf-8", errors="replace")
        self.validate(instance, f"{schema_pointer}/content/{_pointer(chosen)}/schema", where)
        return op

    def request_body_errors(self, method: str, path: str, instance: Any,
                            media_type: str = "application/json") -> list[str]:
        """Why `instance` is not a body the spec documents for `method path` ([] if it is)."""
        op = self.find(method, path)
        body = op.spec["requestBody"]
        pointer = _pointer("paths", op.template, op.method, "requestBody")
        if "$ref" in body:
            pointer = body["$ref"][2:]
        return self._errors(instance, f"{pointer}/content/{_pointer(media_type)}/schema")

    def _errors(self, instance: Any, pointer: str) -> list[str]:
        validator_class = OAS30Validator if self.is_30 else OAS31Validator
        validator = validator_class({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=self.registry)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        ]

    def validate(self, instance: Any, pointer: str, where: str) -> None:
        errors = self._errors(instance, pointer)
        if errors:
            details = "; ".join(errors[:5])
            raise ContractError(f"{where}: body does not match the spec: {details}")


@cache
def contract_for(api: str) -> SpecContract:
    return SpecContract(api, SpecStore().get(api))


def check(api: str, method: str, path: str, response: Any, body: bytes | None = None) -> Operation:
    """Assert that `response` to `method path` is what the API's spec documents."""
    return contract_for(api).check(method, path.split("?")[0], as_reply(response, body))
