"""Schemathesis over the part 2 routes (media, chat, webhooks, connections) on the real server:
no 5xx, every reply conformant, and no secret in the server log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.fuzz import assert_quiet_log, run_schemathesis
from tests.studio.live_helpers import ADMIN_KEY, start_gateway
from tests.studio.oauth_provider import CLIENT_SECRET, oauth_provider

# The SSE feed streams until the client leaves; test_chat_browser_part2 drives it.
PATHS = (r"^/v1/(media(/\{assetId\}/upload)?|webhooks(/\{webhookId\})?"
         r"|connections(/(providers|\{connectionId\}|oauth/\{platform\}/(start|callback)))?"
         r"|studios/\{id\}/chat/(messages|platforms(/\{platform\})?|inbound/\{platform\}"
         r"|page|viewer-messages))$")


def test_fuzz_studio_part2(tmp_path: Path) -> None:
    with oauth_provider() as provider:
        server = start_gateway(tmp_path / "data", STUDIO_OAUTH_PROVIDERS=json.dumps(
            {"testtv": provider.config()}))
        try:
            # A real studio and its viewer token, so the chat routes get past 404 / 401.
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            sid = httpx.post(f"{server.base_url}/v1/studios", json={"name": "fuzz"},
                             headers=headers).json()["id"]
            platforms = httpx.get(f"{server.base_url}/v1/studios/{sid}/chat/platforms",
                                  headers=headers).json()["data"]
            token = next(p["pageUrl"] for p in platforms if "pageUrl" in p).split("token=")[1]
            (tmp_path / "schemathesis.toml").write_text(
                f'[parameters]\n"path.id" = "{sid}"\n"query.token" = "{token}"\n')
            result = run_schemathesis("studio", server.base_url, path_regex=PATHS,
                                      headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                                      max_examples=25, workdir=tmp_path)
            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-6000:]
            assert "No operations" not in output and "passed" in output.lower(), output[-3000:]
        finally:
            assert server.stop() == 0, server.log()[-5000:]
    log = server.log()
    assert_quiet_log(log)
    assert CLIENT_SECRET not in log
