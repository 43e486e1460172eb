"""The library: a fixture Steam install with two library folders, and custom entries in the
database (SQLite and PostgreSQL) that survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.host import steam
from tests.host.conftest import TOKEN, Api, running_app


def _manifest(folder: Path, appid: str, name: str, flags: str = "4") -> None:
    (folder / "steamapps").mkdir(parents=True, exist_ok=True)
    (folder / "steamapps" / f"appmanifest_{appid}.acf").write_text(
        f'"AppState"\n{{\n\t"appid"\t\t"{appid}"\n\t"Universe"\t\t"1"\n'
        f'\t"name"\t\t"{name}"\n\t"StateFlags"\t\t"{flags}"\n'
        f'\t"UserConfig"\n\t{{\n\t\t"language"\t\t"english"\n\t}}\n}}\n')


@pytest.fixture
def steam_root(tmp_path: Path) -> Path:
    root = tmp_path / "Steam"
    second = tmp_path / "games-ssd" / "SteamLibrary"
    _manifest(root, "570", "Dota 2")
    _manifest(root, "228980", "Steamworks Common Redistributables")
    _manifest(root, "440", "Team Fortress 2", flags="2")  # not fully installed
    _manifest(second, "1145360", "Hades")
    _manifest(second, "292030", 'The Witcher 3: "Wild Hunt"'.replace('"', '\\"'))
    (root / "steamapps" / "libraryfolders.vdf").write_text(
        '"libraryfolders"\n{\n'
        f'\t"0"\n\t{{\n\t\t"path"\t\t"{root}"\n\t\t"apps"\n\t\t{{\n\t\t\t"570"\t\t"1"\n\t\t}}\n\t}}\n'
        f'\t"1"\n\t{{\n\t\t"path"\t\t"{second}"\n\t\t// a comment\n'
        '\t\t"apps"\n\t\t{\n\t\t\t"1145360"\t\t"1"\n\t\t}\n\t}\n}\n')
    return root


def test_scanner_reads_both_library_folders(steam_root: Path) -> None:
    games = {g["id"]: g for g in steam.scan(steam_root)}
    assert set(games) == {"steam:570", "steam:1145360", "steam:292030"}
    assert games["steam:292030"]["title"] == 'The Witcher 3: "Wild Hunt"'
    assert games["steam:570"]["art"]["portrait"].endswith("/570/library_600x900.jpg")
    assert games["steam:570"]["launch"] == {"kind": "steam_appid", "value": "570"}
    assert steam.scan(steam_root / "missing") == []


async def test_library_merges_steam_and_custom_and_survives_restart(
        steam_root: Path, database_url: str, tmp_path: Path) -> None:
    env = {"MEDIAGATE_DATA_DIR": str(tmp_path / "data"), "PUNKTFUNK_MGMT_TOKEN": TOKEN,
           "MEDIAGATE_STEAM_ROOT": str(steam_root), "MEDIAGATE_DATABASE_URL": database_url}
    async with running_app(env) as app:
        api = Api(app)
        created = await api.json("POST", "/api/v1/library/custom", status=201, json={
            "title": "  RetroArch ", "art": {"portrait": "https://example.test/ra.png"},
            "launch": {"kind": "command", "value": "retroarch"}})
        assert created["title"] == "RetroArch" and created["art"]["portrait"]
        other = await api.json("POST", "/api/v1/library/custom", status=201,
                               json={"title": "aardvark"})
        updated = await api.json("PUT", f"/api/v1/library/custom/{other['id']}",
                                 json={"title": "Zork", "launch": None})
        assert updated == {"id": other["id"], "title": "Zork", "launch": None,
                           "art": {"portrait": None, "header": None, "hero": None,
                                   "logo": None}}
        await api.json("PUT", "/api/v1/library/custom/nope", status=404, json={"title": "x"})
        await api.json("DELETE", "/api/v1/library/custom/nope", status=404)
    async with running_app(env) as app:
        api = Api(app)
        library = await api.json("GET", "/api/v1/library")
        assert [g["title"] for g in library] == [
            "Dota 2", "Hades", "RetroArch", 'The Witcher 3: "Wild Hunt"', "Zork"]
        ids = {g["title"]: g["id"] for g in library}
        assert ids["RetroArch"] == f"custom:{created['id']}"
        assert {g["store"] for g in library} == {"steam", "custom"}
        response = await api.call("DELETE", f"/api/v1/library/custom/{created['id']}")
        assert response.status_code == 204
        titles = [g["title"] for g in await api.json("GET", "/api/v1/library")]
        assert "RetroArch" not in titles and "Zork" in titles
