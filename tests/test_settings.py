"""Settings from the environment, and start-up refusing bad values with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.bind == "0.0.0.0:8080"
    assert settings.data_dir == Path("data")
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("data/mediagate.db")
    assert settings.public_api_write_enabled is True
    assert settings.punch_default_ttl == 1800
    assert settings.allowed_origin == "*"


def test_upstream_names_are_honoured() -> None:
    settings = Settings.from_env({
        "ROOM_TOKENS": "room1:tok1; room2:tok2",
        "RATE_LIMIT_RPS": "5",
        "RECORD_ENABLED": "1",
        "STUN_URLS": "stun:a:3478, stun:b:3478",
        "MAX_SUBS_PER_ROOM": "3",
        "PUBLIC_API_WRITE_ENABLED": "off",
        "MEDIAGATE_ICE_PORT_RANGE": "40000-40100",
    })
    assert {k: v.get_secret_value() for k, v in settings.room_tokens.items()} == {
        "room1": "tok1", "room2": "tok2"}
    assert settings.rate_limit_rps == 5 and settings.rate_limit_burst == 5
    assert settings.record_enabled is True
    assert settings.stun_urls == ["stun:a:3478", "stun:b:3478"]
    assert settings.max_subs_per_room == 3
    assert settings.public_api_write_enabled is False
    assert settings.ice_port_range == (40000, 40100)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MEDIAGATE_BIND", "nonsense"),
        ("MEDIAGATE_BIND", "127.0.0.1:99999"),
        ("RATE_LIMIT_RPS", "-1"),
        ("RATE_LIMIT_BURST", "many"),
        ("RECORD_ENABLED", "maybe"),
        ("PUNCH_DEFAULT_TTL", "5"),
        ("ROOM_TOKENS", "room-without-token"),
        ("MEDIAGATE_ICE_PORT_RANGE", "50000-40000"),
        ("MEDIAGATE_PUBLIC_IPS", "not-an-ip"),
        ("MEDIAGATE_BOOTSTRAP_API_KEY", "pk_test_123"),
        ("CALLS_APP_ID", "only-the-id"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(name if name != "CALLS_APP_ID" else "CALLS_APP_SECRET")
    assert "\n" not in message


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PUNCH_SECRET": "short-secret-value"})
    assert "short-secret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"), [("MEDIAGATE_BIND", "nonsense"), ("RATE_LIMIT_RPS", "-1")]
)
def test_serve_refuses_to_start_with_one_clear_line(tmp_path: Path, name: str,
                                                    value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    env.update({"MEDIAGATE_DATA_DIR": str(tmp_path), name: value})
    result = subprocess.run([sys.executable, "-m", "gateway", "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mediagate.db").exists()


def test_bind_flag_is_validated_too(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    env["MEDIAGATE_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "gateway", "serve", "--bind", "x"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "MEDIAGATE_BIND" in result.stderr and "Traceback" not in result.stderr
