"""One typed settings object, read from the environment.

Names are the operator contract: mediagate's own `MEDIAGATE_*` variables plus the
upstreams' names, honoured as they are so an operator can bring an old config.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A bad environment value; the message names the variable."""


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
    return value


def _parse_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _parse_room_tokens(value: Any) -> Any:
    """`room1:tok1;room2:tok2` as upstream writes it."""
    if not isinstance(value, str):
        return value
    tokens: dict[str, str] = {}
    for entry in value.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        room, sep, token = entry.partition(":")
        if not sep or not room.strip() or not token.strip():
            raise ValueError("expected 'room:token' entries separated by ';'")
        tokens[room.strip()] = token.strip()
    return tokens


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _parse_calls_live_rooms(value: Any) -> Any:
    """`app1:room1,room2;app2:*`: the live rooms each Calls app may pull although protected."""
    if not isinstance(value, str):
        return value
    grants: dict[str, frozenset[str]] = {}
    for entry in value.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        app, sep, rooms = entry.partition(":")
        names = {room.strip() for room in rooms.split(",") if room.strip()}
        if (not sep or not _NAME.fullmatch(app.strip()) or not names
                or not all(room == "*" or _NAME.fullmatch(room) for room in names)):
            raise ValueError(
                "expected 'app:room1,room2' or 'app:*' entries separated by ';' "
                "(names of [A-Za-z0-9_-], up to 64 characters)"
            )
        grants[app.strip()] = grants.get(app.strip(), frozenset()) | names
    return grants


def _parse_bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8080")
    host = host.strip("[]")
    if not re.fullmatch(r"[A-Za-z0-9.\-:]+", host):
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8080")
    return value


def _parse_port_range(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        low, sep, high = value.partition("-")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise ValueError("expected LOW-HIGH, e.g. 40000-40100")
        return (int(low), int(high))
    return value


def _check_port_range(value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is not None and not (1024 <= value[0] <= value[1] <= 65535):
        raise ValueError("expected 1024 <= LOW <= HIGH <= 65535")
    return value


def _check_networks(value: list[str]) -> list[str]:
    for item in value:
        ipaddress.ip_network(item, strict=False)
    return value


def _check_ips(value: list[str]) -> list[str]:
    for item in value:
        ipaddress.ip_address(item)
    return value


class StudioOAuthProvider(BaseModel):
    """One linkable platform of STUDIO_OAUTH_PROVIDERS (OAuth 2 authorization code + PKCE)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    authorize_url: str = Field(alias="authorizeUrl", pattern=r"^https?://")
    token_url: str = Field(alias="tokenUrl", pattern=r"^https?://")
    client_id: str = Field(alias="clientId", min_length=1)
    client_secret: SecretStr = Field(alias="clientSecret")
    scopes: list[str] = Field(default_factory=list)
    userinfo_url: str = Field(alias="userinfoUrl", pattern=r"^https?://")
    revoke_url: str | None = Field(None, alias="revokeUrl", pattern=r"^https?://")
    display_name: str | None = Field(None, alias="displayName")
    """The platform's name as shown to users (defaults to the key)."""
    user_id_field: str = Field("sub", alias="userIdField")
    name_field: str = Field("name", alias="nameField")
    avatar_field: str = Field("picture", alias="avatarField")


def _parse_oauth_providers(value: Any) -> Any:
    """A JSON object: platform name -> StudioOAuthProvider fields."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("expected a JSON object of providers") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", k) for k in value
        ):
            raise ValueError("expected a JSON object keyed by lowercase platform names")
    return value


Bool = Annotated[bool, BeforeValidator(_parse_bool)]
StrList = Annotated[list[str], BeforeValidator(_parse_list)]
OptionalSecret = SecretStr | None


class Settings(BaseModel):
    """Every knob of the gateway. Construct with `Settings.from_env(os.environ)`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    # mediagate's own
    data_dir: Path = Field(Path("data"), alias="MEDIAGATE_DATA_DIR")
    database_url_override: str | None = Field(None, alias="MEDIAGATE_DATABASE_URL")
    public_url: str | None = Field(None, alias="MEDIAGATE_PUBLIC_URL")
    secret_key: OptionalSecret = Field(None, alias="MEDIAGATE_SECRET_KEY", min_length=16)
    bind: Annotated[str, AfterValidator(_parse_bind)] = Field(
        "0.0.0.0:8080", alias="MEDIAGATE_BIND"
    )
    log_format: Literal["text", "json"] = Field("text", alias="MEDIAGATE_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="MEDIAGATE_LOG_LEVEL"
    )
    max_body_bytes: int = Field(1024 * 1024, alias="MEDIAGATE_MAX_BODY_BYTES", ge=1024)
    shutdown_grace_seconds: float = Field(10.0, alias="MEDIAGATE_SHUTDOWN_GRACE", ge=0)
    """On SIGTERM: how long media sessions may finish before they are closed."""
    migrate_on_start: Bool = Field(True, alias="MEDIAGATE_MIGRATE_ON_START")
    replica_url: str | None = Field(None, alias="MEDIAGATE_REPLICA_URL")
    """This replica's own address, for routing media sessions held by it."""
    trusted_proxies: Annotated[StrList, AfterValidator(_check_networks)] = Field(
        default_factory=list, alias="MEDIAGATE_TRUSTED_PROXIES"
    )
    egress_allow: Annotated[StrList, AfterValidator(_check_networks)] = Field(
        default_factory=list, alias="MEDIAGATE_EGRESS_ALLOW"
    )
    """CIDRs client-supplied URLs may reach although private, loopback or link-local."""
    # media networking
    ice_port_range: Annotated[
        tuple[int, int] | None,
        BeforeValidator(_parse_port_range),
        AfterValidator(_check_port_range),
    ] = Field(None, alias="MEDIAGATE_ICE_PORT_RANGE")
    public_ips: Annotated[StrList, AfterValidator(_check_ips)] = Field(
        default_factory=list, alias="MEDIAGATE_PUBLIC_IPS"
    )
    ice_allowed_ips: Annotated[StrList, AfterValidator(_check_networks)] = Field(
        default_factory=list, alias="MEDIAGATE_ICE_ALLOWED_IPS"
    )
    max_pending_peers_per_ip: int = Field(20, alias="MEDIAGATE_MAX_PENDING_PEERS_PER_IP", ge=1)
    """Media sessions one client address may hold that have not connected yet."""
    max_pending_peers: int = Field(256, alias="MEDIAGATE_MAX_PENDING_PEERS", ge=1)
    """Media sessions not connected yet, in all (each holds UDP sockets and memory)."""
    peer_connect_timeout: float = Field(
        30.0, alias="MEDIAGATE_PEER_CONNECT_TIMEOUT", ge=1, le=600
    )
    """Seconds a media session may take to connect (ICE + DTLS) before it is closed."""
    stun_urls: StrList = Field(default_factory=list, alias="STUN_URLS")
    turn_urls: StrList = Field(default_factory=list, alias="TURN_URLS")
    turn_username: str | None = Field(None, alias="TURN_USERNAME")
    turn_password: OptionalSecret = Field(None, alias="TURN_PASSWORD")

    # single-tenant bootstrap
    calls_app_id: str | None = Field(None, alias="CALLS_APP_ID", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    calls_app_secret: OptionalSecret = Field(None, alias="CALLS_APP_SECRET", min_length=8)
    calls_live_rooms: Annotated[
        dict[str, frozenset[str]], BeforeValidator(_parse_calls_live_rooms)
    ] = Field(default_factory=dict, alias="CALLS_LIVE_ROOMS")
    """Calls app id -> live rooms (`*`: all) it may pull although the room is protected."""
    bootstrap_api_key: OptionalSecret = Field(None, alias="MEDIAGATE_BOOTSTRAP_API_KEY")
    punktfunk_mgmt_token: OptionalSecret = Field(
        None, alias="PUNKTFUNK_MGMT_TOKEN", min_length=8
    )

    # live rooms (upstream names)
    auth_token: OptionalSecret = Field(None, alias="AUTH_TOKEN")
    room_tokens: Annotated[dict[str, SecretStr], BeforeValidator(_parse_room_tokens)] = Field(
        default_factory=dict, alias="ROOM_TOKENS"
    )
    jwt_secret: OptionalSecret = Field(None, alias="JWT_SECRET")
    jwt_audience: str | None = Field(None, alias="JWT_AUDIENCE")
    admin_token: OptionalSecret = Field(None, alias="ADMIN_TOKEN")
    max_subs_per_room: int = Field(0, alias="MAX_SUBS_PER_ROOM", ge=0)
    rate_limit_rps: float = Field(0.0, alias="RATE_LIMIT_RPS", ge=0)
    rate_limit_burst: int = Field(0, alias="RATE_LIMIT_BURST", ge=0)
    allowed_origin: str = Field("*", alias="ALLOWED_ORIGIN")
    record_enabled: Bool = Field(False, alias="RECORD_ENABLED")
    record_dir: Path | None = Field(None, alias="RECORD_DIR")
    upload_recordings: Bool = Field(False, alias="UPLOAD_RECORDINGS")
    delete_recording_after_upload: Bool = Field(False, alias="DELETE_RECORDING_AFTER_UPLOAD")
    s3_endpoint: str | None = Field(None, alias="S3_ENDPOINT")
    s3_region: str | None = Field(None, alias="S3_REGION")
    s3_bucket: str | None = Field(None, alias="S3_BUCKET")
    s3_access_key: OptionalSecret = Field(None, alias="S3_ACCESS_KEY")
    s3_secret_key: OptionalSecret = Field(None, alias="S3_SECRET_KEY")
    s3_use_ssl: Bool = Field(True, alias="S3_USE_SSL")
    s3_path_style: Bool = Field(False, alias="S3_PATH_STYLE")
    s3_prefix: str = Field("", alias="S3_PREFIX")

    # brokerage (upstream names)
    punch_secret: OptionalSecret = Field(None, alias="PUNCH_SECRET", min_length=32)
    punch_default_ttl: int = Field(1800, alias="PUNCH_DEFAULT_TTL", ge=60, le=86400)
    punch_max_streams: int = Field(16, alias="PUNCH_MAX_STREAMS", ge=1, le=16)
    punch_rate_limit: int = Field(10, alias="PUNCH_RATE_LIMIT", ge=0)
    punch_max_relays: int = Field(16, alias="PUNCH_MAX_RELAYS", ge=0, le=1024)
    """srt-live-transmit relays this replica runs at once (0: no relay)."""
    punch_relay_idle_timeout: float = Field(
        60.0, alias="PUNCH_RELAY_IDLE_TIMEOUT", gt=0, le=3600
    )
    """Seconds a relay lives on without a connected peer (WebSocket or SRT)."""
    turnstile_secret: OptionalSecret = Field(None, alias="TURNSTILE_SECRET")
    turnstile_verify_url: str = Field(
        "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        alias="TURNSTILE_VERIFY_URL",
    )

    # studio (upstream names)
    public_api_write_enabled: Bool = Field(True, alias="PUBLIC_API_WRITE_ENABLED")
    studio_rate_limit_rps: float = Field(20.0, alias="STUDIO_RATE_LIMIT_RPS", ge=0)
    """Per-API-key token bucket refill rate; 0 disables the limit."""
    studio_rate_limit_burst: int = Field(100, alias="STUDIO_RATE_LIMIT_BURST", ge=1)
    studio_restream_backoff_initial: float = Field(
        1.0, alias="STUDIO_RESTREAM_BACKOFF_INITIAL", gt=0, le=60
    )
    studio_restream_backoff_max: float = Field(
        10.0, alias="STUDIO_RESTREAM_BACKOFF_MAX", gt=0, le=600
    )
    studio_restream_connect_timeout: float = Field(
        15.0, alias="STUDIO_RESTREAM_CONNECT_TIMEOUT", gt=0, le=600
    )
    studio_media_max_bytes: int = Field(
        2 * 1024**3, alias="STUDIO_MEDIA_MAX_BYTES", ge=1
    )
    """Largest `byteSize` a media-library upload may reserve."""
    studio_media_upload_ttl: int = Field(900, alias="STUDIO_MEDIA_UPLOAD_TTL", ge=1, le=7 * 86400)
    """Seconds a presigned upload URL stays valid."""
    studio_max_pending_uploads: int = Field(5, alias="STUDIO_MAX_PENDING_UPLOADS", ge=1)
    """Media uploads one owner may have reserved and not yet finished (per-owner quota)."""
    studio_max_pending_upload_bytes: int = Field(
        4 * 1024**3, alias="STUDIO_MAX_PENDING_UPLOAD_BYTES", ge=1
    )
    """Total `byteSize` of one owner's reserved, unfinished media uploads."""
    studio_max_studios: int = Field(100, alias="STUDIO_MAX_STUDIOS", ge=1)
    studio_max_sources_per_studio: int = Field(20, alias="STUDIO_MAX_SOURCES_PER_STUDIO", ge=1)
    studio_max_destinations_per_studio: int = Field(
        20, alias="STUDIO_MAX_DESTINATIONS_PER_STUDIO", ge=1
    )
    studio_media_storage: Literal["local", "s3"] = Field("local", alias="STUDIO_MEDIA_STORAGE")
    """Where media-library uploads go: the gateway itself, or the `S3_*` bucket."""
    studio_media_s3_prefix: str = Field("studio-media/", alias="STUDIO_MEDIA_S3_PREFIX")
    studio_webhook_retries: int = Field(5, alias="STUDIO_WEBHOOK_RETRIES", ge=0, le=20)
    """Retries of a failed webhook delivery (after the first attempt)."""
    studio_webhook_backoff_initial: float = Field(
        1.0, alias="STUDIO_WEBHOOK_BACKOFF_INITIAL", gt=0, le=600
    )
    studio_webhook_backoff_max: float = Field(
        60.0, alias="STUDIO_WEBHOOK_BACKOFF_MAX", gt=0, le=3600
    )
    studio_max_webhooks: int = Field(25, alias="STUDIO_MAX_WEBHOOKS", ge=1, le=10000)
    """Webhooks one owner may have."""
    studio_oauth_providers: Annotated[
        dict[str, StudioOAuthProvider], BeforeValidator(_parse_oauth_providers)
    ] = Field(default_factory=dict, alias="STUDIO_OAUTH_PROVIDERS")
    """Platforms a Studio connection can be linked with (JSON; see README)."""
    studio_oauth_refresh_margin: float = Field(
        300.0, alias="STUDIO_OAUTH_REFRESH_MARGIN", ge=0, le=86400
    )
    """Seconds before expiry an OAuth access token is refreshed."""

    # host management (punktfunk)
    steam_root: Path | None = Field(None, alias="MEDIAGATE_STEAM_ROOT")
    # 0 = the device-facing server (GameStream pairing, native devices) is off; Moonlight
    # expects 47989 / 47984.
    gamestream_http_port: int = Field(
        0, alias="MEDIAGATE_GAMESTREAM_HTTP_PORT", ge=0, le=65535
    )
    gamestream_https_port: int = Field(
        0, alias="MEDIAGATE_GAMESTREAM_HTTPS_PORT", ge=0, le=65535
    )
    # samples cannot come faster than the media core's own 1 s stats
    stats_capture_period: float = Field(
        1.0, alias="MEDIAGATE_STATS_CAPTURE_PERIOD", ge=1.0, le=2.0
    )

    @model_validator(mode="after")
    def _check_pairs(self) -> Settings:
        if (self.calls_app_id is None) != (self.calls_app_secret is None):
            missing = "CALLS_APP_SECRET" if self.calls_app_secret is None else "CALLS_APP_ID"
            raise SettingsError(f"{missing}: must be set together with its pair")
        key = self.bootstrap_api_key
        if key is not None and not re.fullmatch(
            r"sk_live_[A-Za-z0-9_-]{16,}", key.get_secret_value()
        ):
            raise SettingsError(
                "MEDIAGATE_BOOTSTRAP_API_KEY: expected sk_live_ followed by at least 16 "
                "characters of [A-Za-z0-9_-]"
            )
        if (self.gamestream_http_port == 0) != (self.gamestream_https_port == 0) or (
            self.gamestream_http_port and self.gamestream_http_port == self.gamestream_https_port
        ):
            raise SettingsError(
                "MEDIAGATE_GAMESTREAM_HTTPS_PORT: must differ from the HTTP port, and be 0 "
                "exactly when MEDIAGATE_GAMESTREAM_HTTP_PORT is 0 (disabled)"
            )
        if self.upload_recordings and not self.s3_bucket:
            raise SettingsError("S3_BUCKET: required when UPLOAD_RECORDINGS is on")
        if self.studio_media_storage == "s3" and not self.s3_bucket:
            raise SettingsError("S3_BUCKET: required when STUDIO_MEDIA_STORAGE is s3")
        if self.rate_limit_rps > 0 and self.rate_limit_burst == 0:
            object.__setattr__(self, "rate_limit_burst", max(1, int(self.rate_limit_rps)))
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build from an environment mapping; raise SettingsError naming the bad variable."""
        known = {field.alias for field in cls.model_fields.values() if field.alias}
        values: dict[str, Any] = {k: v for k, v in environ.items() if k in known}
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    @property
    def database_url(self) -> str:
        if self.database_url_override:
            return self.database_url_override
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'mediagate.db'}"

    @property
    def recordings_dir(self) -> Path:
        return self.record_dir if self.record_dir is not None else self.data_dir / "records"

    @property
    def bind_host_port(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        return host.strip("[]"), int(port)

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, dict):
                found.extend(
                    v.get_secret_value() for v in value.values() if isinstance(v, SecretStr)
                )
                found.extend(
                    v.client_secret.get_secret_value() for v in value.values()
                    if isinstance(v, StudioOAuthProvider)
                )
        return [v for v in found if v]


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    fields = Settings.model_fields
    loc = error["loc"][0] if error["loc"] else ""
    name = fields[loc].alias if loc in fields else str(loc)
    message = error["msg"].removeprefix("Value error, ")
    if not name and message.split(":", 1)[0].isupper():
        return message
    raw = error.get("input")
    shown = "" if name in _SECRET_ALIASES or not isinstance(raw, str) else f" (got {raw!r})"
    return f"{name}: {message}{shown}"


_SECRET_ALIASES = {
    field.alias
    for field in Settings.model_fields.values()
    if field.alias and "Secret" in str(field.annotation)
}
_SECRET_ALIASES.add("STUDIO_OAUTH_PROVIDERS")
