"""Every document in specs/ is valid, and the server serves each of them."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from quart.testing import QuartClient

from gateway.paths import SPECS_DIR
from gateway.specs import SPEC_FILES, SpecStore

OPENAPI = [name for name in SPEC_FILES if name != "punch-messages"]


def test_every_file_in_specs_is_known() -> None:
    on_disk = {path.name for path in SPECS_DIR.iterdir() if path.is_file()}
    assert on_disk == set(SPEC_FILES.values())


@pytest.mark.parametrize("name", OPENAPI)
def test_openapi_document_is_valid(name: str) -> None:
    validate(SpecStore().get(name))


def test_punch_message_schema_is_valid() -> None:
    schema = SpecStore().get("punch-messages")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", [*OPENAPI, "punch-messages.schema"])
async def test_served_under_openapi_path(client: QuartClient, name: str) -> None:
    response = await client.get(f"/openapi/{name}.json")
    assert response.status_code == 200
    assert await response.get_json() == SpecStore().get(name.removesuffix(".schema"))


async def test_studio_serves_its_own_contract_path(client: QuartClient) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = await response.get_json()
    assert document == SpecStore().get("studio")
    assert "/v1/studios" in document["paths"]


async def test_unknown_document_is_404(client: QuartClient) -> None:
    response = await client.get("/openapi/nothing.json")
    assert response.status_code == 404
