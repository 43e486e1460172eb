"""OAuth 2 with one configured provider, through Authlib's `AsyncOAuth2Client`.

Authorization code with PKCE (S256) and `state`; token refresh; RFC 7009 revocation where
the provider has a `revokeUrl`; the account's id, name and avatar from its userinfo URL.
Errors come out as `OAuthFailure`, whose text never carries a token.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import authlib.deprecate
import httpx

from gateway.settings import StudioOAuthProvider

with warnings.catch_warnings():
    # Authlib deprecates plain httpx in favour of an `httpx2` package; httpx is what the
    # gateway uses, and the shim works with it.
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.common.errors import AuthlibBaseError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

TIMEOUT_SECONDS = 15.0
# Token endpoint answers meaning the grant is gone: the user has to link again.
REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_token", "unauthorized_client",
                           "access_denied"})


class OAuthFailure(Exception):
    def __init__(self, message: str, *, reauth: bool = False) -> None:
        super().__init__(message)
        self.reauth = reauth


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: float | None
    scopes: list[str] | None


@dataclass(frozen=True)
class Profile:
    user_id: str
    name: str
    avatar_url: str | None


def _tokens(raw: dict[str, Any], previous_refresh: str | None = None) -> Tokens:
    access = raw.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthFailure("the provider's token response has no access_token")
    expires_at = raw.get("expires_at")
    if expires_at is None and raw.get("expires_in") is not None:
        expires_at = time.time() + float(raw["expires_in"])
    scope = raw.get("scope")
    refresh = raw.get("refresh_token") or previous_refresh
    return Tokens(access, refresh if isinstance(refresh, str) else None,
                  float(expires_at) if expires_at is not None else None,
                  scope.split() if isinstance(scope, str) else None)


def _failure(exc: Exception, what: str) -> OAuthFailure:
    if isinstance(exc, AuthlibBaseError):
        error = str(getattr(exc, "error", "") or "error")
        return OAuthFailure(f"{what}: the provider answered {error}",
                            reauth=error in REAUTH_ERRORS)
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return OAuthFailure(f"{what}: the provider answered HTTP {status}",
                            reauth=status in (400, 401))
    return OAuthFailure(f"{what}: could not reach the provider ({type(exc).__name__})")


class ProviderClient:
    def __init__(self, platform: str, config: StudioOAuthProvider, redirect_uri: str) -> None:
        self.platform = platform
        self.config = config
        self.redirect_uri = redirect_uri

    def _client(self, **kwargs: Any) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret.get_secret_value(),
            scope=" ".join(self.config.scopes) or None, redirect_uri=self.redirect_uri,
            code_challenge_method="S256", timeout=TIMEOUT_SECONDS, follow_redirects=False,
            **kwargs,
        )

    def authorization_url(self, state: str, code_verifier: str) -> str:
        client = self._client()
        url, _ = client.create_authorization_url(self.config.authorize_url, state=state,
                                                 code_verifier=code_verifier)
        return str(url)

    async def exchange(self, code: str, code_verifier: str) -> Tokens:
        try:
            async with self._client() as client:
                raw = await client.fetch_token(self.config.token_url, code=code,
                                               code_verifier=code_verifier,
                                               grant_type="authorization_code")
        except (AuthlibBaseError, httpx.HTTPError, ValueError) as exc:
            raise _failure(exc, "the code exchange failed") from None
        return _tokens(dict(raw))

    async def refresh(self, refresh_token: str) -> Tokens:
        try:
            async with self._client() as client:
                raw = await client.refresh_token(self.config.token_url,
                                                 refresh_token=refresh_token)
        except (AuthlibBaseError, httpx.HTTPError, ValueError) as exc:
            raise _failure(exc, "the token refresh failed") from None
        return _tokens(dict(raw), refresh_token)

    async def profile(self, access_token: str) -> Profile:
        try:
            async with self._client(token={"access_token": access_token,
                                           "token_type": "Bearer"}) as client:
                response = await client.get(self.config.userinfo_url)
                response.raise_for_status()
                info = response.json()
        except (AuthlibBaseError, httpx.HTTPError, ValueError) as exc:
            raise _failure(exc, "reading the account failed") from None
        if not isinstance(info, dict) or info.get(self.config.user_id_field) in (None, ""):
            raise OAuthFailure("the provider's userinfo has no account id")
        user_id = str(info[self.config.user_id_field])
        name = info.get(self.config.name_field)
        avatar = info.get(self.config.avatar_field)
        return Profile(user_id, str(name) if name else user_id,
                       avatar if isinstance(avatar, str) else None)

    async def revoke(self, token: str, hint: str) -> bool:
        if not self.config.revoke_url:
            return False
        try:
            async with self._client() as client:
                response = await client.revoke_token(self.config.revoke_url, token=token,
                                                     token_type_hint=hint)
                return bool(200 <= response.status_code < 300)
        except (AuthlibBaseError, httpx.HTTPError, ValueError):
            return False
