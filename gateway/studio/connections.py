"""Linked platform accounts: OAuth links (tokens sealed, refreshed before expiry) and manual
RTMP connections (URL + sealed stream key).

`status` stays true: `active` while the tokens work; `needs_reauth` once the provider
refuses the grant (revoked or expired there) or its refresh fails for good; `expired` when
the access token ran out and there is no refresh token. Replicas share the refresh work
through a short claim on the row. No Quart here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from gateway.db import Database
from gateway.egress import RTMP_SCHEMES, EgressPolicy
from gateway.keys import InstanceSecret
from gateway.settings import Settings
from gateway.studio.ids import new_id
from gateway.studio.models import Studio
from gateway.studio.models_part2 import StudioConnection, StudioOAuthState
from gateway.studio.oauth import OAuthFailure, ProviderClient, Tokens
from gateway.studio.sealbox import SealBox
from gateway.studio.service import InvalidRequest, NotFound, Page, check_egress

log = logging.getLogger("mediagate.studio.connections")

CONNECTION_ID = re.compile(r"^con_[0-9a-f]{26}$")
STATE_TTL = timedelta(minutes=10)
CLAIM = timedelta(seconds=60)
REFRESH_EVERY_SECONDS = 30.0
CHECK_EVERY_SECONDS = 600.0


class LinkFailed(Exception):
    """The OAuth callback cannot complete; the text is safe to show."""


@dataclass
class ConnectionService:
    settings: Settings
    db: Database
    secret: InstanceSecret
    egress: EgressPolicy | None = None
    """The app's egress guard; built from the settings if not given."""
    _task: asyncio.Task[None] | None = field(default=None)

    def __post_init__(self) -> None:
        self.box = SealBox(self.secret, "studio-connection-token")
        self.policy = self.egress or EgressPolicy.from_cidrs(self.settings.egress_allow)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.studio_oauth_providers:
            self._task = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_fresh(self) -> None:
        interval = min(REFRESH_EVERY_SECONDS,
                       max(1.0, self.settings.studio_oauth_refresh_margin / 2))
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while True:
            try:
                await self.refresh_due()
                if loop.time() - checked >= CHECK_EVERY_SECONDS:
                    checked = loop.time()
                    await self.check_all()
            except Exception:
                log.exception("connection refresh round failed")
            await asyncio.sleep(interval)

    # -- providers ------------------------------------------------------------------------

    def provider(self, platform: str, redirect_uri: str) -> ProviderClient:
        config = self.settings.studio_oauth_providers.get(platform)
        if config is None:
            raise NotFound(f"no OAuth provider is configured for {platform!r}")
        return ProviderClient(platform, config, redirect_uri)

    # -- reading --------------------------------------------------------------------------

    async def list(self, owner: str, after: str | None,
                   limit: int) -> Page[StudioConnection]:
        async with self.db.session() as session:
            query = select(StudioConnection).where(StudioConnection.owner == owner)
            if after is not None:
                query = query.where(StudioConnection.id > after)
            rows = list((await session.execute(
                query.order_by(StudioConnection.id).limit(limit + 1))).scalars())
            now = datetime.now(UTC)
            for row in rows:  # an access token that ran out with nothing to renew it
                if (row.status == "active" and row.connection_type == "oauth"
                        and row.refresh_token_sealed is None and row.expires_at is not None
                        and _aware(row.expires_at) <= now):
                    row.status, row.updated_at = "expired", now
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    async def _owned(self, session: Any, owner: str, connection_id: str) -> StudioConnection:
        row = await session.get(StudioConnection, connection_id) \
            if CONNECTION_ID.fullmatch(connection_id) else None
        if row is None or row.owner != owner:
            raise NotFound("connection not found")
        return row

    async def resolve_output(self, owner: str, connection_id: str) -> tuple[str, str] | None:
        """(rtmp url, stream key) of a manual connection a destination is bound to."""
        async with self.db.session() as session:
            row = await self._owned(session, owner, connection_id)
        key = self.box.open(row.id, row.stream_key_sealed) if row.stream_key_sealed else None
        if row.rtmp_url is None or key is None:
            return None
        return row.rtmp_url, key

    async def output_for_studio(self, studio_id: str,
                                connection_id: str) -> tuple[str, str] | None:
        """For a destination bound to a connection: the (RTMP url, stream key) it streams
        to; None for a link without one. The connection must be the studio owner's."""
        async with self.db.session() as session:
            studio = await session.get(Studio, studio_id)
            row = await session.get(StudioConnection, connection_id) \
                if CONNECTION_ID.fullmatch(connection_id) else None
        if studio is None or row is None or row.owner != studio.owner:
            raise InvalidRequest("connectionId: no such connection")
        key = self.box.open(row.id, row.stream_key_sealed) if row.stream_key_sealed else None
        if row.rtmp_url is None or key is None:
            return None
        return row.rtmp_url, key

    # -- manual connections ---------------------------------------------------------------

    async def create_manual(self, owner: str, platform: str, display_name: str,
                            rtmp_url: str, stream_key: str) -> StudioConnection:
        await check_egress(self.policy, rtmp_url, RTMP_SCHEMES, "rtmpUrl")
        if not stream_key:
            raise InvalidRequest("streamKey is required for a manual connection")
        now = datetime.now(UTC)
        connection_id = new_id("con")
        row = StudioConnection(
            id=connection_id, owner=owner, platform=platform, connection_type="manual",
            display_name=display_name, status="active", rtmp_url=rtmp_url,
            stream_key_sealed=self.box.seal(connection_id, stream_key), connected_at=now,
            updated_at=now,
        )
        async with self.db.session() as session:
            session.add(row)
        return row

    # -- OAuth linking --------------------------------------------------------------------

    async def start_link(self, owner: str, platform: str, redirect_uri: str,
                         redirect_to: str | None) -> tuple[str, datetime]:
        provider = self.provider(platform, redirect_uri)
        if redirect_to is not None and not redirect_to.startswith(("http://", "https://")):
            raise InvalidRequest("redirectTo must be an http:// or https:// URL")
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        state_hash = hashlib.sha256(state.encode()).hexdigest()
        now = datetime.now(UTC)
        async with self.db.session() as session:
            await session.execute(delete(StudioOAuthState)
                                  .where(StudioOAuthState.expires_at < now))
            session.add(StudioOAuthState(
                state_hash=state_hash, owner=owner, platform=platform,
                code_verifier_sealed=self.box.seal(state_hash, verifier),
                redirect_to=redirect_to, expires_at=now + STATE_TTL,
            ))
        return provider.authorization_url(state, verifier), now + STATE_TTL

    async def finish_link(self, platform: str, state: str | None, code: str | None,
                          error: str | None,
                          redirect_uri: str) -> tuple[StudioConnection, str | None]:
        """Consume the state (once), exchange the code, read the account, store the link."""
        if not state:
            raise LinkFailed("the callback has no state")
        state_hash = hashlib.sha256(state.encode()).hexdigest()
        async with self.db.session() as session:
            pending = await session.get(StudioOAuthState, state_hash)
            if pending is not None:
                await session.delete(pending)
        if (pending is None or pending.platform != platform
                or _aware(pending.expires_at) < datetime.now(UTC)):
            raise LinkFailed("unknown or expired state: start the link again")
        if error:
            raise LinkFailed(f"the provider refused the link ({error[:100]})")
        if not code:
            raise LinkFailed("the callback has no code")
        verifier = self.box.open(state_hash, pending.code_verifier_sealed)
        if verifier is None:
            raise LinkFailed("the link cannot be completed: start it again")
        provider = self.provider(platform, redirect_uri)
        try:
            tokens = await provider.exchange(code, verifier)
            profile = await provider.profile(tokens.access_token)
        except OAuthFailure as exc:
            raise LinkFailed(str(exc)) from None
        now = datetime.now(UTC)
        async with self.db.session() as session:
            row = (await session.execute(select(StudioConnection).where(
                StudioConnection.owner == pending.owner,
                StudioConnection.platform == platform,
                StudioConnection.connection_type == "oauth",
                StudioConnection.external_user_id == profile.user_id,
            ))).scalar_one_or_none()
            if row is None:  # linking the same account again renews the existing one
                row = StudioConnection(id=new_id("con"), owner=pending.owner,
                                       platform=platform, connection_type="oauth",
                                       external_user_id=profile.user_id, connected_at=now)
                session.add(row)
            row.display_name = profile.name[:200]
            row.avatar_url = profile.avatar_url
            self._store_tokens(row, tokens, now)
        return row, pending.redirect_to

    def _store_tokens(self, row: StudioConnection, tokens: Tokens, now: datetime) -> None:
        row.access_token_sealed = self.box.seal(row.id, tokens.access_token)
        row.refresh_token_sealed = (self.box.seal(row.id, tokens.refresh_token)
                                    if tokens.refresh_token else None)
        row.expires_at = (datetime.fromtimestamp(tokens.expires_at, UTC)
                          if tokens.expires_at is not None else None)
        if tokens.scopes is not None:
            row.granted_scopes = " ".join(tokens.scopes)
        elif row.granted_scopes is None:
            config = self.settings.studio_oauth_providers.get(row.platform)
            row.granted_scopes = " ".join(config.scopes) if config else None
        row.status = "active"
        row.updated_at = now
        row.refresh_claimed_until = None

    # -- refresh --------------------------------------------------------------------------

    async def refresh_due(self, redirect_uri: str = "") -> int:
        """Refresh every active OAuth connection whose token expires within the margin."""
        now = datetime.now(UTC)
        horizon = now + timedelta(seconds=self.settings.studio_oauth_refresh_margin)
        async with self.db.session() as session:
            ids = list((await session.execute(select(StudioConnection.id).where(
                StudioConnection.connection_type == "oauth",
                StudioConnection.status == "active",
                StudioConnection.refresh_token_sealed.is_not(None),
                StudioConnection.expires_at.is_not(None),
                StudioConnection.expires_at <= horizon,
            ))).scalars())
        refreshed = 0
        for connection_id in ids:
            if await self._claim(connection_id, now) and await self._refresh(connection_id,
                                                                             redirect_uri):
                refreshed += 1
        return refreshed

    async def check_all(self) -> int:
        """Ask the provider whether each active link still works (it may have been revoked
        there): a refused access token is refreshed, and a refused refresh means
        `needs_reauth`. Returns how many links were found broken."""
        now = datetime.now(UTC)
        async with self.db.session() as session:
            rows = list((await session.execute(select(StudioConnection).where(
                StudioConnection.connection_type == "oauth",
                StudioConnection.status == "active"))).scalars())
        broken = 0
        for row in rows:
            access = self.box.open(row.id, row.access_token_sealed)
            if access is None or row.platform not in self.settings.studio_oauth_providers:
                continue
            try:
                await self.provider(row.platform, "").profile(access)
                continue
            except OAuthFailure as exc:
                if not exc.reauth:
                    continue  # unreachable provider: nothing learnt
            if row.refresh_token_sealed and await self._claim(row.id, now) \
                    and await self._refresh(row.id, ""):
                continue
            await self._set_status(row.id, "needs_reauth")
            broken += 1
        return broken

    async def _claim(self, connection_id: str, now: datetime) -> bool:
        async with self.db.session() as session:
            result = await session.execute(
                update(StudioConnection)
                .where(StudioConnection.id == connection_id,
                       or_(StudioConnection.refresh_claimed_until.is_(None),
                           StudioConnection.refresh_claimed_until < now))
                .values(refresh_claimed_until=now + CLAIM)
            )
            return bool(result.rowcount)

    async def _refresh(self, connection_id: str, redirect_uri: str) -> bool:
        async with self.db.session() as session:
            row = await session.get(StudioConnection, connection_id)
            if row is None:
                return False
            refresh_token = self.box.open(row.id, row.refresh_token_sealed)
            platform = row.platform
        if refresh_token is None or platform not in self.settings.studio_oauth_providers:
            await self._set_status(connection_id, "needs_reauth")
            return False
        try:
            tokens = await self.provider(platform, redirect_uri).refresh(refresh_token)
        except OAuthFailure as exc:
            if exc.reauth:
                await self._set_status(connection_id, "needs_reauth")
            log.info("connection %s: %s", connection_id, exc)
            return False
        async with self.db.session() as session:
            row = await session.get(StudioConnection, connection_id)
            if row is None:
                return False
            self._store_tokens(row, tokens, datetime.now(UTC))
        return True

    async def _set_status(self, connection_id: str, status: str) -> None:
        async with self.db.session() as session:
            await session.execute(update(StudioConnection)
                                  .where(StudioConnection.id == connection_id)
                                  .values(status=status, updated_at=datetime.now(UTC),
                                          refresh_claimed_until=None))

    # -- unlink ---------------------------------------------------------------------------

    async def delete(self, owner: str, connection_id: str, redirect_uri: str = "") -> None:
        async with self.db.session() as session:
            row = await self._owned(session, owner, connection_id)
            await session.delete(row)
        if row.connection_type != "oauth" or row.platform not in \
                self.settings.studio_oauth_providers:
            return
        provider = self.provider(row.platform, redirect_uri)
        for sealed, hint in ((row.refresh_token_sealed, "refresh_token"),
                             (row.access_token_sealed, "access_token")):
            token = self.box.open(row.id, sealed) if sealed else None
            if token is not None and await provider.revoke(token, hint):
                break


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
