"""The layout DEVELOPERS.md describes, and no API shadowing another's paths."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from quart import Quart

from gateway.app import MOUNTS
from gateway.paths import PROJECT_ROOT

APIS = ["brokerage", "host", "live", "calls", "studio"]


@pytest.mark.parametrize("api", APIS)
def test_blueprint_package_reads_the_same_way(api: str) -> None:
    package = PROJECT_ROOT / "gateway" / api
    for module in ("__init__.py", "routes.py", "service.py", "models.py", "schemas.py"):
        assert (package / module).is_file(), f"gateway/{api}/{module} is missing"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("api", APIS)
def test_service_modules_do_not_import_quart(api: str) -> None:
    for path in (PROJECT_ROOT / "gateway" / api).glob("service*.py"):
        offenders = {n for n in _imports(path) if n.split(".")[0] in {"quart", "werkzeug"}}
        assert not offenders, f"{path.name} imports {offenders}"


def test_media_core_knows_nothing_about_http_or_apis() -> None:
    for path in (PROJECT_ROOT / "media").rglob("*.py"):
        offenders = {
            n for n in _imports(path)
            if n.split(".")[0] in {"quart", "werkzeug", "hypercorn", "gateway"}
        }
        assert not offenders, f"media/{path.name} imports {offenders}"


def test_every_route_lives_under_its_own_apis_paths(app: Quart) -> None:
    owner_of_prefix = {prefix: mount.name for mount in MOUNTS for prefix in mount.prefixes}
    checked = 0
    for rule in app.url_map.iter_rules():
        api = rule.endpoint.split(".")[0].split("_")[0] if "." in rule.endpoint else None
        mount = next((m for m in MOUNTS if m.name == api), None)
        if mount is None:  # the gateway's own routes: /openapi/, /readyz, static
            assert rule.rule.startswith(("/openapi/", "/readyz", "/static")), rule.rule
            continue
        literal = rule.rule.split("<")[0]
        owned = literal in mount.exact_paths or any(literal.startswith(p) for p in mount.prefixes)
        assert owned, f"{api} routes {rule.rule}, outside the paths it owns"
        # the longest prefix claiming the path must be this API's: no other API shadows it
        claims = [p for p in owner_of_prefix if literal.startswith(p)]
        if claims:
            assert owner_of_prefix[max(claims, key=len)] == api, f"{rule.rule} is shadowed"
        checked += 1
    assert checked >= 5


async def test_calls_is_mounted_twice(app: Quart) -> None:
    names = {bp for bp in app.blueprints}
    assert {"calls_v1", "calls"} <= names


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(PROJECT_ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_test_peers_never_use_a_public_stun_server() -> None:
    """aiortc's peer without a configuration gathers through Google's STUN server; tests
    stay on loopback (tests/rtc.py builds every aiortc test peer)."""
    bare = re.compile(r"(?<!new )RTCPeerConnection\(\)")  # `new ...()` is a browser's
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("tests", "bench")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if bare.search(path.read_text())
    ]
    assert not offenders, offenders
