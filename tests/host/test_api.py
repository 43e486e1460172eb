"""Auth, host identity, status, compositors, session control and the JSON write rules."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.host import compositors
from gateway.host.auth import TOKEN_FILE
from tests.host.conftest import TOKEN, Api, running_app

PROTECTED = [
    ("GET", "/api/v1/host"), ("GET", "/api/v1/status"), ("GET", "/api/v1/compositors"),
    ("GET", "/api/v1/clients"), ("GET", "/api/v1/pair"), ("GET", "/api/v1/native/pair"),
    ("GET", "/api/v1/native/pending"), ("GET", "/api/v1/library"),
    ("DELETE", "/api/v1/session"), ("POST", "/api/v1/session/idr"),
    ("GET", "/api/v1/stats/capture/status"), ("GET", "/api/v1/stats/recordings"),
    ("POST", "/api/v1/stats/capture/start"),
]


async def test_every_route_but_health_needs_the_token(api: Api) -> None:
    for method, path in PROTECTED:
        response = await api.call(method, path, auth=False)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await api.call(method, path, headers={"Authorization": "Bearer nope-nope"})
        assert wrong.status_code == 401, path
    health = await api.json("GET", "/api/v1/health", auth=False)
    assert health["status"] == "ok"
    assert (await api.call("GET", "/api/v1/console", auth=False)).status_code == 200
    # a capture was never started by the refused POST
    assert (await api.json("GET", "/api/v1/stats/capture/status"))["armed"] is False


async def test_non_loopback_bind_generates_and_requires_a_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"MEDIAGATE_DATA_DIR": str(data_dir), "MEDIAGATE_BIND": "0.0.0.0:18080"}
    async with running_app(env) as app:
        path = data_dir / TOKEN_FILE
        name, _, token = path.read_text().strip().partition("=")
        assert name == "PUNKTFUNK_MGMT_TOKEN" and len(token) == 64
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert (await Api(app, None).call("GET", "/api/v1/host")).status_code == 401
        assert (await Api(app, token).call("GET", "/api/v1/host")).status_code == 200
    async with running_app(env) as app:  # the same token after a restart
        assert path.read_text().strip() == f"PUNKTFUNK_MGMT_TOKEN={token}"
        assert (await Api(app, token).call("GET", "/api/v1/host")).status_code == 200


async def test_loopback_bind_without_a_token_is_open(tmp_path: Path) -> None:
    async with running_app({"MEDIAGATE_DATA_DIR": str(tmp_path / "d")}) as app:
        assert (await Api(app, None).call("GET", "/api/v1/status")).status_code == 200
        assert not (tmp_path / "d" / TOKEN_FILE).exists()


async def test_host_info_and_uniqueid_survives_a_restart(data_dir: Path) -> None:
    env = {"MEDIAGATE_DATA_DIR": str(data_dir), "PUNKTFUNK_MGMT_TOKEN": TOKEN,
           "MEDIAGATE_GAMESTREAM_HTTP_PORT": "0"}
    async with running_app(env) as app:
        first = await Api(app).json("GET", "/api/v1/host")
    async with running_app(env) as app:
        second = await Api(app).json("GET", "/api/v1/host")
    assert first["uniqueid"] == second["uniqueid"] and len(first["uniqueid"]) == 16
    assert first["ports"]["mgmt"] == 18080
    assert set(first["codecs"]) <= {"h264", "h265", "av1"}
    assert "h264" in first["codecs"]  # PyAV ships libx264 here


async def test_status_idle(api: Api) -> None:
    status = await api.json("GET", "/api/v1/status")
    assert status == {"video_streaming": False, "audio_streaming": False, "session": None,
                      "stream": None, "pin_pending": False, "paired_clients": 0}


async def test_session_control_without_media(api: Api) -> None:
    for _ in range(2):
        assert (await api.call("DELETE", "/api/v1/session")).status_code == 204
    response = await api.json("POST", "/api/v1/session/idr", status=409)
    assert response == {"error": "No active video stream"}


async def test_compositors_listed(api: Api) -> None:
    listed = await api.json("GET", "/api/v1/compositors")
    assert [c["id"] for c in listed] == ["kwin", "wlroots", "mutter", "gamescope"]
    assert sum(c["default"] for c in listed) <= 1


@pytest.mark.parametrize(("env", "binaries", "expected_default"), [
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "KDE"}, {"kwin_wayland"}, "kwin"),
    ({"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/sway.sock"}, {"sway"}, "wlroots"),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "ubuntu:GNOME"},
     {"gnome-shell", "gamescope"}, "mutter"),
    ({}, {"gamescope"}, "gamescope"),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "KDE"}, set(), None),
    ({}, set(), None),
])
def test_compositor_detection(env: dict[str, str], binaries: set[str],
                              expected_default: str | None) -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in binaries else None

    found = {c.id: c for c in compositors.detect(env, which)}
    defaults = [c.id for c in found.values() if c.default]
    assert defaults == ([expected_default] if expected_default else [])
    assert found["gamescope"].available == ("gamescope" in binaries)
    if expected_default:
        assert found[expected_default].available


async def test_json_write_rules(api: Api) -> None:
    path = "/api/v1/library/custom"
    wrong_type = await api.json("POST", path, status=415, data="{}",
                                headers={"Content-Type": "text/plain"})
    assert "application/json" in wrong_type["error"]
    await api.json("POST", path, status=400, data="{nope",
                   headers={"Content-Type": "application/json"})
    await api.json("POST", path, status=422, json={"title": 5})
    await api.json("POST", path, status=422, json=[1, 2])
    await api.json("POST", path, status=400, json={"title": "   "})
    await api.json("POST", "/api/v1/pair/pin", status=400, json={"pin": "12a4"})
    await api.json("POST", "/api/v1/pair/pin", status=422, json={})
    await api.json("POST", "/api/v1/pair/pin", status=409, json={"pin": "1234"})
    await api.json("POST", "/api/v1/native/pair/arm", status=422, json={"ttl_secs": "x"})
    assert await api.json("GET", "/api/v1/library") == []  # nothing was stored


def test_hardware_encoders_count_only_when_they_open(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.host import hostinfo

    present = {"h264_nvenc", "hevc_nvenc", "av1_nvenc"}
    monkeypatch.setattr(hostinfo, "_has_encoder", lambda name: name in present)
    opening: set[str] = set()
    monkeypatch.setattr(hostinfo, "_hardware_opens", lambda name: name in opening)
    assert hostinfo.detect_codecs() == []
    opening.add("hevc_nvenc")
    assert hostinfo.detect_codecs() == ["h265"]
    present.add("libx264")
    assert hostinfo.detect_codecs() == ["h264", "h265"]
    # on this machine: nvenc is compiled into PyAV's FFmpeg, but without a GPU it never opens
    monkeypatch.undo()
    assert hostinfo._has_encoder("libx264")
    assert not hostinfo._hardware_opens("no_such_encoder")


@pytest.mark.parametrize("env", [
    {"MEDIAGATE_GAMESTREAM_HTTP_PORT": "47989"},
    {"MEDIAGATE_GAMESTREAM_HTTP_PORT": "47989", "MEDIAGATE_GAMESTREAM_HTTPS_PORT": "47989"},
    {"MEDIAGATE_STATS_CAPTURE_PERIOD": "0.1"},
    {"PUNKTFUNK_MGMT_TOKEN": "short"},
])
def test_host_settings_are_validated(env: dict[str, str]) -> None:
    from gateway.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert next(iter(env)) in str(error.value) or "MEDIAGATE_GAMESTREAM" in str(error.value)
    assert "short" not in str(error.value)
