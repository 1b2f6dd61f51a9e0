"""Dashboards, alert rules, scrape config and the metric list agree with each other."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml  # type: ignore[import-untyped]

from tests.deploy import promql
from wacast.cli.devstack import SERVICES

ROOT = promql.ROOT
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
FORBIDDEN_LABELS = ("device_id", "phone", "message_id", "lead_id", "tenant_id", "to")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "wacast_grafana_generate", ROOT / "deploy" / "grafana" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_equal_the_generator_output() -> None:
    expected = _generator().files()
    committed = {path.name: path.read_text() for path in promql.DASHBOARDS.glob("*.json")}
    assert committed == expected, "run `.venv/bin/python deploy/grafana/generate.py`"


def test_the_five_dashboards_are_well_formed() -> None:
    boards = promql.dashboards()
    assert {board["uid"] for board in boards.values()} == {
        "wacast-campaigns",
        "wacast-devices",
        "wacast-bus",
        "wacast-projections",
        "wacast-api",
    }
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
            if panel["type"] != "row":
                assert panel["targets"], (name, panel["title"])
                assert panel["datasource"]["uid"] == "prometheus"
        for title, expr in promql.panel_exprs(board):
            assert promql.balanced(expr), (name, title, expr)
            assert promql.metric_names(expr), (name, title, expr)


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["uid"] == "prometheus"
    assert source["type"] == "prometheus"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "wacast.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_is_described_and_has_a_runbook_section() -> None:
    anchors = {
        _anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    names = set()
    for rule in promql.alert_rules():
        names.add(rule["alert"])
        assert re.fullmatch(r"Wacast[A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        annotations = rule["annotations"]
        assert annotations["summary"]
        assert annotations["description"]
        assert promql.balanced(str(rule["expr"])), rule["alert"]
        url = annotations["runbook_url"]
        assert url.startswith("docs/OPERATIONS.md#")
        assert url.partition("#")[2] in anchors, f"no section for {rule['alert']}"
    for required in (
        "WacastStuckMessages",
        "WacastBanRate",
        "WacastProjectionLag",
        "WacastConsumerBacklog",
        "WacastDeadLetters",
    ):
        assert required in names


def test_prometheus_scrapes_every_service_on_its_port_and_loads_the_rules() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    for component in SERVICES:
        assert jobs[component.name] == [f"{component.name}:{component.default_port}"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    for rule_file in config["rule_files"]:
        assert f"./deploy/prometheus/{Path(rule_file).name}:{rule_file}:ro" in mounts


def test_the_metric_list_is_what_dashboards_and_alerts_use() -> None:
    listed = promql.listed_metrics()
    assert len(listed) == len(set(listed)), "a metric is listed twice"
    used = promql.used_metrics()
    assert set(listed) == set(used), (
        f"used but not listed: {sorted(set(used) - set(listed))}; "
        f"listed but unused: {sorted(set(listed) - set(used))}"
    )


def test_metric_names_and_labels_follow_prometheus_conventions() -> None:
    for name in promql.used_metrics():
        if name in promql.PROMETHEUS_SERIES:
            continue
        assert re.fullmatch(r"(wacast|wasim)_[a-z0-9_]+", name), name
    exprs = [
        expr for board in promql.dashboards().values() for _, expr in promql.panel_exprs(board)
    ]
    exprs += [str(rule["expr"]) for rule in promql.alert_rules()]
    for expr in exprs:
        for label in FORBIDDEN_LABELS:
            assert not re.search(rf"\b{label}\s*(=|!=|=~|!~)", expr), (label, expr)
            assert not re.search(rf"by \([^)]*\b{label}\b", expr), (label, expr)


def test_promql_names_are_read_correctly() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(x_seconds_bucket{a="b(c)"}[5m])))'
        " / clamp_min(sum(rate(y_total[1h] offset 1h)), 1e-9) > 0.1 and up == 0"
    )
    assert promql.metric_names(expr) == {"x_seconds_bucket", "y_total", "up"}
    assert promql.balanced(expr)
    assert not promql.balanced("sum(rate(x[5m])")
    assert promql.exported("x_seconds_bucket", {"x_seconds"})
    assert promql.exported("y_total", {"y_total"})
    assert not promql.exported("z_total", {"y_total"})
