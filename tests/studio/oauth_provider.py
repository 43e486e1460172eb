"""A small OAuth 2 provider on 127.0.0.1: authorization code + PKCE (S256), refresh tokens
(rotated), RFC 7009 revocation and a userinfo endpoint. `revoke_all()` plays the user
revoking the app on the platform's side."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "mediagate-test-client"
CLIENT_SECRET = "provider-client-secret-" + "77" * 8


@dataclass
class Grant:
    user: str
    refresh_token: str
    access_tokens: set[str] = field(default_factory=set)
    revoked: bool = False


@dataclass
class Provider:
    base: str = ""
    expires_in: int = 60
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    """(path, form or query) of every request, for assertions."""
    revocations: list[str] = field(default_factory=list)

    def config(self, *, revoke: bool = True) -> dict[str, Any]:
        config = {"authorizeUrl": f"{self.base}/authorize", "tokenUrl": f"{self.base}/token",
                  "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                  "scopes": ["profile", "live.write"], "userinfoUrl": f"{self.base}/userinfo",
                  "displayName": "Test Platform"}
        if revoke:
            config["revokeUrl"] = f"{self.base}/revoke"
        return config

    def revoke_all(self) -> None:
        for grant in self.grants:
            grant.revoked = True

    def _grant_for_access(self, token: str) -> Grant | None:
        return next((g for g in self.grants if token in g.access_tokens and not g.revoked),
                    None)

    def _issue(self, grant: Grant) -> dict[str, Any]:
        access = "at_" + secrets.token_hex(16)
        grant.access_tokens.add(access)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": grant.refresh_token, "scope": "profile live.write"}


@contextmanager
def oauth_provider() -> Iterator[Provider]:
    provider = Provider()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                  ) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _client_ok(self, form: dict[str, str]) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                return (user, password) == (CLIENT_ID, CLIENT_SECRET)
            return (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID,
                                                                          CLIENT_SECRET)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            provider.log.append((parts.path, query))
            if parts.path == "/authorize":
                # The user approves at once: back to redirect_uri with a code.
                if (query.get("client_id") != CLIENT_ID or query.get("response_type") != "code"
                        or query.get("code_challenge_method") != "S256"
                        or not query.get("code_challenge")):
                    return self._send(400, {"error": "invalid_request"})
                code = secrets.token_hex(8)
                provider.codes[code] = query
                target = query["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": query["state"]})
                return self._send(302, headers={"Location": target})
            if parts.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                grant = provider._grant_for_access(token)
                if grant is None:
                    return self._send(401, {"error": "invalid_token"})
                return self._send(200, {"sub": grant.user, "name": "Streamer " + grant.user,
                                        "picture": f"https://img.invalid/{grant.user}.png"})
            return self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.log.append((self.path, form))
            if not self._client_ok(form):
                return self._send(401, {"error": "invalid_client"})
            if self.path == "/token":
                return self._token(form)
            if self.path == "/revoke":
                token = form.get("token", "")
                provider.revocations.append(form.get("token_type_hint", ""))
                for grant in provider.grants:
                    if token == grant.refresh_token or token in grant.access_tokens:
                        grant.revoked = True
                return self._send(200)
            return self._send(404, {"error": "not_found"})

        def _token(self, form: dict[str, str]) -> None:
            if form.get("grant_type") == "authorization_code":
                request = provider.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(
                    hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if (request is None or request["code_challenge"] != challenge
                        or form.get("redirect_uri") != request["redirect_uri"]):
                    return self._send(400, {"error": "invalid_grant"})
                grant = Grant(user=f"u{len(provider.grants) + 1}",
                              refresh_token="rt_" + secrets.token_hex(16))
                provider.grants.append(grant)
                return self._send(200, provider._issue(grant))
            if form.get("grant_type") == "refresh_token":
                grant = next((g for g in provider.grants
                              if g.refresh_token == form.get("refresh_token")), None)
                if grant is None or grant.revoked:
                    return self._send(400, {"error": "invalid_grant"})
                grant.refresh_token = "rt_" + secrets.token_hex(16)  # rotated
                return self._send(200, provider._issue(grant))
            return self._send(400, {"error": "unsupported_grant_type"})

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
