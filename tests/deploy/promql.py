"""The metric names the dashboards and alert rules use, read from their JSON and YAML.

PromQL is not parsed fully: strings, label matchers, ranges, grouping clauses and numbers are
removed, and what remains of an identifier not followed by `(` is a metric name. That is
enough for the expressions wacast writes (a test checks the result against deploy/metrics.txt,
which a human reads).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
METRICS_LIST = ROOT / "deploy" / "metrics.txt"

KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
PROMETHEUS_SERIES = frozenset({"up"})
"""Series Prometheus makes itself while scraping; no service exports them."""
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z]+")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"(?<![A-Za-z_:0-9])\d+(\.\d+)?([eE][-+]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and labels left out)."""
    text = _STRING.sub("''", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    found: set[str] = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end() :].lstrip()
        name = match.group(0)
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue
        found.add(name)
    return found


def balanced(expr: str) -> bool:
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    for char in _STRING.sub("''", expr):
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return all(v == 0 for v in depth.values())


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panel_exprs(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of every panel, rows included."""
    found: list[tuple[str, str]] = []
    for panel in board.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                if target.get("expr"):
                    found.append((str(inner.get("title", "")), str(target["expr"])))
    return found


def variable_metrics(board: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        names.update(_LABEL_VALUES.findall(text))
    return names


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (dashboard file or alert name)."""
    used: dict[str, set[str]] = {}
    for name, board in dashboards().items():
        for _, expr in panel_exprs(board):
            for metric in metric_names(expr):
                used.setdefault(metric, set()).add(name)
        for metric in variable_metrics(board):
            used.setdefault(metric, set()).add(name)
    for rule in alert_rules():
        for metric in metric_names(str(rule["expr"])):
            used.setdefault(metric, set()).add(f"alert {rule['alert']}")
    return used


def listed_metrics() -> list[str]:
    """deploy/metrics.txt: one metric a line; `#` starts a comment."""
    names: list[str] = []
    for line in METRICS_LIST.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name.split()[0])
    return names


def exported_families(exposition: str) -> set[str]:
    """Names on the `# HELP` and `# TYPE` lines (present even before any sample)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
            names.add(parts[2])
    return names


def exported(metric: str, families: set[str]) -> bool:
    if metric in families or metric in PROMETHEUS_SERIES:
        return True
    return any(
        metric.endswith(suffix) and metric.removesuffix(suffix) in families
        for suffix in HISTOGRAM_SUFFIXES
    )
