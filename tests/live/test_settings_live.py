"""The live-rooms settings added for recording upload (upstream names)."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError


def test_s3_settings_parse_like_upstream() -> None:
    settings = Settings.from_env({
        "UPLOAD_RECORDINGS": "1", "DELETE_RECORDING_AFTER_UPLOAD": "1",
        "S3_ENDPOINT": "minio:9000", "S3_BUCKET": "recordings", "S3_USE_SSL": "0",
        "S3_PATH_STYLE": "1", "S3_PREFIX": "live/", "S3_ACCESS_KEY": "ak",
        "S3_SECRET_KEY": "sk-secret",
    })
    assert settings.upload_recordings and settings.delete_recording_after_upload
    assert (settings.s3_use_ssl, settings.s3_path_style, settings.s3_prefix) == (
        False, True, "live/")
    assert "sk-secret" in settings.secret_values()  # redacted from logs
    defaults = Settings.from_env({})
    assert defaults.s3_use_ssl is True and defaults.upload_recordings is False


def test_upload_needs_a_bucket() -> None:
    with pytest.raises(SettingsError, match=r"^S3_BUCKET"):
        Settings.from_env({"UPLOAD_RECORDINGS": "1"})
    with pytest.raises(SettingsError, match=r"^S3_USE_SSL"):
        Settings.from_env({"S3_USE_SSL": "maybe"})
