"""Issue 13: an API key could create webhooks without bound. STUDIO_MAX_WEBHOOKS caps them per
owner, refused like every other Studio quota: 409 `quota_exceeded` naming the setting."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import Settings
from gateway.studio import apikeys
from tests.security.studio_outbound import LOOPBACK_ALLOWED, studio_app
from tests.studio.conftest import StudioClient, make_key

SECRET = "quota-test-secret-" + "1b" * 8


def test_the_default_cap_is_set() -> None:
    assert Settings.from_env({}).studio_max_webhooks == 25


async def test_webhooks_are_capped_per_owner(tmp_path: Path) -> None:
    async with studio_app(tmp_path / "data", **LOOPBACK_ALLOWED,
                          STUDIO_MAX_WEBHOOKS="3") as app:
        client = StudioClient(app)
        alice = await make_key(app, "alice", apikeys.ALL_SCOPES)
        bob = await make_key(app, "bob", ["webhooks:manage"])

        async def create(key: str) -> tuple[int, dict[str, object]]:
            reply = await client.call("POST", "/v1/webhooks", key=key, json_body={
                "url": "http://127.0.0.1:9/h", "events": ["stream.live"], "secret": SECRET})
            return reply.status, reply.json()

        made = [await create(alice) for _ in range(3)]
        assert [status for status, _ in made] == [201] * 3
        status, body = await create(alice)
        assert status == 409
        error = body["error"]
        assert isinstance(error, dict) and error["code"] == "quota_exceeded"
        assert "STUDIO_MAX_WEBHOOKS" in str(error["message"]) and "3" in str(error["message"])
        assert (await create(bob))[0] == 201  # per owner
        listed = (await client.call("GET", "/v1/webhooks", key=alice)).json()["data"]
        assert len(listed) == 3
        assert (await client.call("DELETE", f"/v1/webhooks/{listed[0]['id']}",
                                  key=alice)).status == 200
        assert (await create(alice))[0] == 201
