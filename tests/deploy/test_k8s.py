"""deploy/k8s: every overlay renders, every object is valid Kubernetes, and the pieces fit."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import msgspec
import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy import kustomize_lite
from tests.deploy.kustomize_lite import Resource, key, pod_specs
from tests.deploy.wiring import MODULES, settings_variables
from wacast.contracts.subjects import PARTITIONS
from wacast.runtime.settings import CommonSettings, env_name

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
KUBERNETES = "1.31"
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("postgresql.cnpg.io/v1", "Cluster"),
}
"""Custom resources kubernetes-validate has no schema for: checked by hand below."""
OPERATOR_MADE = {("Secret", "wacast-postgres-app"), ("Service", "wacast-postgres-rw")}
"""What CloudNativePG creates for the production Cluster `wacast-postgres`."""
STATELESS = {"api-gateway", "report-service"}


@functools.cache
def _rendered(overlay: str) -> str:
    return json.dumps(kustomize_lite.render(K8S / "overlays" / overlay))


def rendered(overlay: str) -> list[Resource]:
    """The overlay's objects (rendered once per test session, a fresh copy each call)."""
    objects: list[Resource] = json.loads(_rendered(overlay))
    return objects


def by_key(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def wacast_containers(resources: list[Resource]) -> list[tuple[Resource, dict[str, Any]]]:
    found = []
    for resource in resources:
        for spec in pod_specs(resource):
            for container in spec["containers"]:
                if container.get("args", [None])[0] in MODULES:
                    found.append((resource, container))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_for_kubernetes(overlay: str) -> None:
    resources = rendered(overlay)
    assert resources
    for resource in resources:
        assert resource["metadata"]["name"]
        if (resource["apiVersion"], resource["kind"]) in CRDS:
            assert isinstance(resource.get("spec"), dict), key(resource)
            continue
        kubernetes_validate.validate(resource, desired_version=KUBERNETES, strict=True)
    kinds = {(r["apiVersion"], r["kind"]) for r in resources}
    assert kinds & CRDS, "the CRD kinds are skipped by name: keep them in CRDS"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlays_namespace(overlay: str) -> None:
    resources = rendered(overlay)
    (namespace,) = [r for r in resources if r["kind"] == "Namespace"]
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_is_a_three_node_jetstream_cluster_that_syncs_every_write(overlay: str) -> None:
    objects = by_key(rendered(overlay))
    nats = objects[("StatefulSet", "nats")]
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    conf = objects[("ConfigMap", "nats-config")]["data"]["nats.conf"]
    lines = [line.split("#")[0].strip() for line in conf.splitlines()]
    assert "sync_interval: always" in lines
    for i in range(3):
        assert f"nats://nats-{i}.nats-headless:6222" in lines
    volumes = nats["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "nats-config"}} in volumes
    compose_conf = (ROOT / "deploy" / "nats" / "nats.conf").read_text()
    assert "sync_interval: always" in [line.strip() for line in compose_conf.splitlines()]


@pytest.mark.parametrize(("overlay", "replicas"), [("dev", "1"), ("production", "3")])
def test_stream_replicas_per_overlay(overlay: str, replicas: str) -> None:
    config = by_key(rendered(overlay))[("ConfigMap", "wacast-config")]
    assert config["data"]["WACAST_STREAM_REPLICAS"] == replicas


def test_postgres_is_a_statefulset_in_dev_and_a_cloudnativepg_cluster_in_production() -> None:
    dev = by_key(rendered("dev"))
    assert ("StatefulSet", "postgres") in dev
    assert ("Secret", "wacast-postgres-app") in dev
    production = by_key(rendered("production"))
    assert ("StatefulSet", "postgres") not in production
    assert ("Secret", "wacast-postgres-app") not in production
    cluster = production[("Cluster", "wacast-postgres")]
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "wacast", "owner": "wacast"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_probes_resources_and_runs_unprivileged(overlay: str) -> None:
    resources = rendered(overlay)
    found = wacast_containers(resources)
    names = {container["args"][0] for _, container in found}
    assert names >= set(MODULES) - {"wa-simulator"}
    for workload, container in found:
        where = key(workload)
        (port,) = container["ports"]
        assert port["name"] == "http"
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["resources"]["requests"]["cpu"], where
        assert container["resources"]["requests"]["memory"], where
        assert container["resources"]["limits"]["memory"], where
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        (spec,) = pod_specs(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["image"].split(":")[0].endswith("wacast")
        assert ":" in container["image"], "overlays pin the image tag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workload_kinds_pdbs_and_hpas(overlay: str) -> None:
    resources = rendered(overlay)
    objects = by_key(resources)
    gateway = objects[("StatefulSet", "device-gateway")]
    env = gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    replica_id = next(e for e in env if e["name"] == "WACAST_REPLICA_ID")
    assert replica_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert {"name": "NEONIZE_BOT_TAG", "value": "off"} in env
    assert gateway["spec"]["replicas"] <= PARTITIONS
    workloads = [r for r in resources if r["kind"] in ("Deployment", "StatefulSet")]
    budgets = [r for r in resources if r["kind"] == "PodDisruptionBudget"]
    for workload in workloads:
        if workload["metadata"]["name"] == "postgres":
            continue  # one instance: a budget could only block node drains
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets
        ), f"no PodDisruptionBudget for {key(workload)}"
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in resources
        if h["kind"] == "HorizontalPodAutoscaler"
    }
    assert scaled == STATELESS
    for name in STATELESS:
        assert objects[("Deployment", name)]["kind"] == "Deployment"
        assert "replicas" not in objects[("Deployment", name)]["spec"], "the HPA owns replicas"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve_and_services_select_pods(overlay: str) -> None:
    resources = rendered(overlay)
    present = {(r["kind"], r["metadata"]["name"]) for r in resources}
    if overlay == "production":
        present |= OPERATOR_MADE
    pods = [spec_labels for r in resources for spec_labels in _template_labels(r)]
    for resource in resources:
        for spec in pod_specs(resource):
            for container in spec["containers"]:
                for source in container.get("envFrom", []):
                    assert ("ConfigMap", source["configMapRef"]["name"]) in present
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {})
                    if "secretKeyRef" in ref:
                        assert ("Secret", ref["secretKeyRef"]["name"]) in present, var
                    if "configMapKeyRef" in ref:
                        assert ("ConfigMap", ref["configMapKeyRef"]["name"]) in present, var
            for volume in spec.get("volumes", []):
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in present
        if resource["kind"] == "Service":
            selector = resource["spec"]["selector"]
            assert any(selector.items() <= labels.items() for labels in pods), key(resource)
        if resource["kind"] == "StatefulSet":
            assert ("Service", resource["spec"]["serviceName"]) in present
        if resource["kind"] == "HorizontalPodAutoscaler":
            target = resource["spec"]["scaleTargetRef"]
            assert (target["kind"], target["name"]) in present


def _template_labels(resource: Resource) -> list[dict[str, str]]:
    template = resource.get("spec", {}).get("template", {})
    labels = template.get("metadata", {}).get("labels") if isinstance(template, dict) else None
    return [labels] if labels else []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_wacast_variable_is_a_setting_of_the_service_that_gets_it(overlay: str) -> None:
    resources = rendered(overlay)
    objects = by_key(resources)
    common = {env_name(f.name) for f in msgspec.structs.fields(CommonSettings)}
    for name in objects[("ConfigMap", "wacast-config")]["data"]:
        assert not name.startswith("WACAST_") or name in common, name
    for _, container in wacast_containers(resources):
        fields = settings_variables(MODULES[container["args"][0]])
        names = [var["name"] for var in container.get("env", [])]
        for source in container.get("envFrom", []):
            names += list(objects[("ConfigMap", source["configMapRef"]["name"])]["data"])
        for name in names:
            if name.startswith("WACAST_") and container["args"][0] != "wa-simulator":
                assert name in fields, f"{container['name']}: {name} is not a setting"
        port_vars = [n for n in names if n.endswith("_PORT") and n.startswith("WACAST_")]
        assert port_vars, container["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_monitoring_scrapes(overlay: str) -> None:
    objects = by_key(rendered(overlay))
    deny = objects[("NetworkPolicy", "default-deny-ingress")]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    monitor = objects[("ServiceMonitor", "wacast")]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "http",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "10s",
    }
    selected = [
        r
        for r in objects.values()
        if r["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= r["metadata"]["labels"].items()
    ]
    assert {s["metadata"]["labels"]["app.kubernetes.io/name"] for s in selected} >= (
        set(MODULES) - {"wa-simulator"}
    )
    for service in selected:
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(kustomize_lite.Unsupported):
        kustomize_lite.render(tmp_path)
    base = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}], "keep": [1]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "y"}], "keep": [2], "gone": None}}
    assert kustomize_lite.merge(base, patch) == {
        "spec": {
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
            "keep": [2],
        }
    }


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kubectl_kustomize(overlay: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs = {key(r): r for r in yaml.safe_load_all(result.stdout) if r}
    ours = {key(r): r for r in rendered(overlay)}
    assert set(ours) == set(theirs)
    for name, resource in ours.items():
        assert json.dumps(resource, sort_keys=True) == json.dumps(theirs[name], sort_keys=True), (
            name
        )
