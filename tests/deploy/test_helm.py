"""The Helm chart: lint, render default and production values, validate every manifest
against the Kubernetes schemas, and check it is wired to the settings the app reads."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from gateway.app import READINESS_PATH, create_app
from gateway.migrate import upgrade
from gateway.paths import PROJECT_ROOT
from gateway.settings import Settings

CHART = PROJECT_ROOT / "helm" / "mediagate"
KUBERNETES_VERSION = "1.30.0"
PRODUCTION = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
BUNDLED_PG = {"postgresql": {"enabled": True}, "replicaCount": 2}
EXTERNAL_DB = {"database": {"url": "postgresql+asyncpg://u:p@db:5432/mediagate"}}
CUSTOM_RESOURCES = {"ServiceMonitor"}  # CRDs: not in the Kubernetes schemas
# Names only used for `$(VAR)` expansion inside other values, never read by mediagate.
EXPANSION_ONLY = {"POD_NAME", "POSTGRESQL_PASSWORD_FOR_URL"}
SETTINGS_NAMES = {f.alias for f in Settings.model_fields.values() if f.alias}

VALUE_SETS = {
    "default": {},
    "production": PRODUCTION,
    "bundled-postgresql": BUNDLED_PG,
    "external-database": EXTERNAL_DB,
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name="demo", namespace="media", is_install=True)
    documents = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def server(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (statefulset,) = [
        d for d in by_kind(documents, "StatefulSet")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "server"
    ]
    return statefulset


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_lint_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(str(CHART), values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_manifest_is_valid_kubernetes(values: dict[str, Any]) -> None:
    documents = render(values)
    assert documents
    for document in documents:
        if document["kind"] in CUSTOM_RESOURCES:
            assert document["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_values_schema_rejects_bad_values() -> None:
    chart = helm.Chart.load(str(CHART))
    for bad in ({"replicaCount": -1}, {"webrtc": {"udpPortRange": {"min": 80, "max": 90}}},
                {"secrets": {"bootstrapApiKey": "pk_nope"}}, {"unknownKey": 1},
                {"logFormat": "xml"}):
        with pytest.raises(helm.HelmError):
            chart.validate_schema(bad)


def _container_env(documents: list[dict[str, Any]]) -> tuple[dict[str, str], set[str]]:
    """The env one mediagate container sees: ConfigMap + Secret + its own env entries."""
    container = server(documents)["spec"]["template"]["spec"]["containers"][0]
    names: set[str] = set()
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            (configmap,) = [
                d for d in by_kind(documents, "ConfigMap")
                if d["metadata"]["name"] == source["configMapRef"]["name"]
            ]
            values.update(configmap["data"])
            names.update(configmap["data"])
        if "secretRef" in source:
            for secret in by_kind(documents, "Secret"):
                if secret["metadata"]["name"] == source["secretRef"]["name"]:
                    names.update(secret.get("stringData", {}))
    for entry in container.get("env", []):
        names.add(entry["name"])
        if "value" in entry:
            values[entry["name"]] = entry["value"]
    return values, names


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_env_name_is_a_setting_the_app_reads(values: dict[str, Any]) -> None:
    env, names = _container_env(render(values))
    unknown = names - SETTINGS_NAMES - EXPANSION_ONLY
    assert not unknown, f"the chart sets env the app never reads: {sorted(unknown)}"
    # and the app accepts the rendered values as they are
    concrete = {k: v for k, v in env.items() if "$(" not in v}
    Settings.from_env(concrete)


def test_secrets_are_wired_from_the_secret_not_the_configmap() -> None:
    values = {"secrets": {"bootstrapApiKey": "sk_live_" + "a" * 24, "adminToken": "adm",
                          "callsAppId": "app1", "callsAppSecret": "s" * 16}}
    documents = render(values)
    (configmap,) = by_kind(documents, "ConfigMap")
    (secret,) = by_kind(documents, "Secret")
    assert "MEDIAGATE_BOOTSTRAP_API_KEY" in secret["stringData"]
    assert "ADMIN_TOKEN" in secret["stringData"]
    assert "CALLS_APP_SECRET" in secret["stringData"]
    assert len(secret["stringData"]["MEDIAGATE_SECRET_KEY"]) >= 32
    for value in secret["stringData"].values():
        assert value not in configmap["data"].values()
    assert configmap["data"]["CALLS_APP_ID"] == "app1"


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_udp_range_matches_ports_and_services(values: dict[str, Any]) -> None:
    documents = render(values)
    env, _ = _container_env(documents)
    low, high = Settings.from_env({"MEDIAGATE_ICE_PORT_RANGE": env["MEDIAGATE_ICE_PORT_RANGE"]}
                                  ).ice_port_range
    expected = set(range(low, high + 1))
    container = server(documents)["spec"]["template"]["spec"]["containers"][0]
    udp = {p["containerPort"] for p in container["ports"] if p["protocol"] == "UDP"}
    assert udp == expected
    pod = server(documents)["spec"]["template"]["spec"]
    services = [
        d for d in by_kind(documents, "Service") if d["metadata"]["name"].endswith("-webrtc")
    ]
    if pod.get("hostNetwork"):
        assert services == []
    else:
        (service,) = services
        assert {p["port"] for p in service["spec"]["ports"] if p["protocol"] == "UDP"} == expected


async def test_probes_hit_endpoints_the_app_serves(tmp_path: Path) -> None:
    documents = render({})
    container = server(documents)["spec"]["template"]["spec"]["containers"][0]
    paths = {container[probe]["httpGet"]["path"]
             for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert READINESS_PATH in paths
    app = create_app(Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path)}))
    await asyncio.to_thread(upgrade, app.extensions["mediagate"].settings.database_url)
    async with app.test_app():
        client = app.test_client()
        for path in paths:
            assert (await client.get(path)).status_code == 200, path
    http_port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    env, _ = _container_env(documents)
    assert env["MEDIAGATE_BIND"].endswith(f":{http_port}")


def test_migration_job_runs_only_against_an_external_database() -> None:
    for values in ({}, BUNDLED_PG):
        documents = render(values)
        assert by_kind(documents, "Job") == []
        env, _ = _container_env(documents)
        assert env["MEDIAGATE_MIGRATE_ON_START"] == "true"
    for values in (EXTERNAL_DB, PRODUCTION):
        documents = render(values)
        (job,) = by_kind(documents, "Job")
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["migrate"]
        assert "MEDIAGATE_DATABASE_URL" in {e["name"] for e in container["env"]}
        env, _ = _container_env(documents)
        assert env["MEDIAGATE_MIGRATE_ON_START"] == "false"


def test_bundled_postgresql_url_reaches_the_app() -> None:
    documents = render(BUNDLED_PG)
    env, _ = _container_env(documents)
    url = env["MEDIAGATE_DATABASE_URL"]
    assert re.fullmatch(
        r"postgresql\+asyncpg://mediagate:\$\(POSTGRESQL_PASSWORD_FOR_URL\)"
        r"@demo-mediagate-postgresql:5432/mediagate", url)
    services = {d["metadata"]["name"] for d in by_kind(documents, "Service")}
    assert "demo-mediagate-postgresql" in services


def test_security_context_is_non_root_and_read_only() -> None:
    pod = server(render({}))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts


def test_notes_tell_where_each_api_lives() -> None:
    chart = helm.Chart.load(str(CHART))
    notes = chart.render({"publicUrl": "https://m.example"}, name="demo",
                         namespace="media")["mediagate/templates/NOTES.txt"]
    for path in ("/api/session", "/api/v1/", "/api/whip/publish/", "/v1/apps/", "/v1/studios",
                 "/api/ws/", "/api/whep/play/"):
        assert f"https://m.example{path}" in notes, path
