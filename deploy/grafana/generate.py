"""Writes the Grafana dashboards of deploy/grafana/dashboards/ (run it after changing a panel).

    .venv/bin/python deploy/grafana/generate.py

Each dashboard is a list of rows of panels, each panel one or more PromQL queries against
the provisioned Prometheus datasource (uid `prometheus`). A test checks that the committed
JSON equals what this script writes, and that every metric a panel uses is exported by a
running wacast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
FUNNEL = (
    "MessageRequested|MessageAccepted|MessageDispatching|MessageSent|MessageDelivered"
    "|MessageRead|MessageFailed|MessageCancelled"
)


@dataclass
class Panel:
    title: str
    queries: list[tuple[str, str]]
    """(PromQL, legend) pairs."""
    kind: str = "timeseries"
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[tuple[str, list[Panel]]]
    tags: list[str] = field(default_factory=list)
    variables: list[dict[str, Any]] = field(default_factory=list)


def q(expr: str, legend: str = "") -> tuple[str, str]:
    return (expr, legend)


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend or "__auto",
            "range": panel.kind != "stat" and panel.kind != "bargauge",
            "instant": panel.kind in ("stat", "bargauge", "table"),
        }
        for i, (expr, legend) in enumerate(panel.queries)
    ]
    body: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": panel.options,
    }
    if panel.kind == "timeseries":
        body["fieldConfig"]["defaults"]["custom"] = {"fillOpacity": 10, "lineWidth": 1}
        body["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}} | (
            panel.options
        )
    return body


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row_title, row in dashboard.rows:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y, x, tallest = pid + 1, y + 1, 0, 0
        for panel in row:
            if x + panel.width > 24:
                x, y, tallest = 0, y + tallest, 0
            panels.append(_panel(panel, pid, x, y))
            pid, x, tallest = pid + 1, x + panel.width, max(tallest, panel.height)
        y += tallest
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["wacast", *dashboard.tags],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "templating": {"list": dashboard.variables},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["wacast"],
                "asDropdown": True,
                "title": "wacast",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


def quantiles(metric: str, by: str = "", matchers: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    sel = f"{metric}_bucket{{{matchers}}}" if matchers else f"{metric}_bucket"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        q(
            f"histogram_quantile({p}, sum by ({group}) (rate({sel}[$__rate_interval])))",
            name + suffix,
        )
        for p, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
    ]


CAMPAIGNS = Dashboard(
    uid="wacast-campaigns",
    title="wacast / Campaigns: throughput and delivery funnel",
    description="Messages from request to read, sends by outcome, pacing and latency.",
    tags=["campaigns"],
    rows=[
        (
            "Delivery funnel",
            [
                Panel(
                    "Messages requested (range)",
                    [
                        q(
                            'sum(increase(wacast_eventstore_appends_total{stream="MESSAGES", '
                            'type="MessageRequested"}[$__range]))'
                        )
                    ],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Sent (range)",
                    [
                        q(
                            'sum(increase(wacast_eventstore_appends_total{stream="MESSAGES", '
                            'type="MessageSent"}[$__range]))'
                        )
                    ],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Delivered (range)",
                    [
                        q(
                            'sum(increase(wacast_eventstore_appends_total{stream="MESSAGES", '
                            'type="MessageDelivered"}[$__range]))'
                        )
                    ],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Failed (range)",
                    [
                        q(
                            'sum(increase(wacast_eventstore_appends_total{stream="MESSAGES", '
                            'type=~"MessageFailed|MessageCancelled"}[$__range]))'
                        )
                    ],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Funnel over the range",
                    [
                        q(
                            "sum by (type) (increase(wacast_eventstore_appends_total"
                            f'{{stream="MESSAGES", type=~"{FUNNEL}"}}[$__range]))',
                            "{{type}}",
                        )
                    ],
                    kind="bargauge",
                    width=12,
                    description="Requested -> accepted in a lane -> handed to the driver -> "
                    "sent -> delivered -> read; failed and cancelled beside.",
                    options={"orientation": "horizontal", "displayMode": "gradient"},
                ),
                Panel(
                    "Funnel per minute",
                    [
                        q(
                            "sum by (type) (rate(wacast_eventstore_appends_total"
                            f'{{stream="MESSAGES", type=~"{FUNNEL}"}}[$__rate_interval])) * 60',
                            "{{type}}",
                        )
                    ],
                    unit="short",
                    width=12,
                ),
            ],
        ),
        (
            "Sends",
            [
                Panel(
                    "Sends per minute by outcome",
                    [
                        q(
                            "sum by (status) (rate(wacast_gateway_sends_total[$__rate_interval]))"
                            " * 60",
                            "{{status}}",
                        )
                    ],
                    description="What left a lane: sent, failed, retry, cancelled.",
                ),
                Panel(
                    "Failures and cancellations by reason (per minute)",
                    [
                        q(
                            "sum by (status, reason) (rate(wacast_gateway_sends_total"
                            '{status=~"failed|cancelled|retry"}[$__rate_interval])) * 60',
                            "{{status}} {{reason}}",
                        )
                    ],
                ),
                Panel(
                    "Driver send latency",
                    quantiles("wacast_gateway_send_seconds"),
                    unit="s",
                    description="From calling the driver's send to its result.",
                ),
                Panel(
                    "Gap between two sends of one device",
                    quantiles("wacast_gateway_gap_seconds"),
                    unit="s",
                    description="Pacing: should stay inside the tenant's [min, max] gap.",
                ),
            ],
        ),
        (
            "Campaigns and sequences",
            [
                Panel(
                    "Campaign events (range)",
                    [
                        q(
                            "sum by (type) (increase(wacast_eventstore_appends_total"
                            '{stream="CAMPAIGNS"}[$__range]))',
                            "{{type}}",
                        )
                    ],
                    kind="bargauge",
                    options={"orientation": "horizontal", "displayMode": "basic"},
                ),
                Panel(
                    "Sequence steps due per minute, and how late they were decided",
                    [
                        q(
                            "sum(rate(wacast_sequence_steps_due_total[$__rate_interval])) * 60",
                            "due",
                        ),
                        *quantiles("wacast_sequence_step_lag_seconds"),
                    ],
                ),
            ],
        ),
    ],
)

DEVICES = Dashboard(
    uid="wacast-devices",
    title="wacast / Device fleet health",
    description="Devices by state, bans, reconnects, partitions and lanes per gateway replica.",
    tags=["devices"],
    rows=[
        (
            "Fleet",
            [
                Panel(
                    "Connected devices",
                    [q('sum(wacast_gateway_devices{state="connected"})')],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Banned devices",
                    [q('sum(wacast_gateway_devices{state="banned"})')],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Bans in the last 24 h",
                    [q("sum(increase(wacast_gateway_bans_total[24h]))")],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Partitions held (of 64)",
                    [q("sum(wacast_gateway_leases)")],
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Devices by state",
                    [q("sum by (state) (wacast_gateway_devices)", "{{state}}")],
                    width=12,
                ),
                Panel(
                    "Bans and reconnect attempts per hour",
                    [
                        q("sum(rate(wacast_gateway_bans_total[$__rate_interval])) * 3600", "bans"),
                        q(
                            "sum(rate(wacast_gateway_reconnects_total[$__rate_interval])) * 3600",
                            "reconnects",
                        ),
                    ],
                    width=12,
                ),
            ],
        ),
        (
            "Gateway replicas",
            [
                Panel(
                    "Partitions held per replica",
                    [q("sum by (instance) (wacast_gateway_leases)", "{{instance}}")],
                    width=8,
                ),
                Panel(
                    "Partitions started (takeovers) per hour",
                    [
                        q(
                            "sum by (instance) (rate(wacast_gateway_partition_starts_total"
                            "[$__rate_interval])) * 3600",
                            "{{instance}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Lanes busy / messages pending",
                    [
                        q("sum by (instance) (wacast_gateway_lanes_busy)", "busy {{instance}}"),
                        q("sum by (instance) (wacast_gateway_queue_depth)", "pending {{instance}}"),
                    ],
                    width=8,
                ),
            ],
        ),
        (
            "wa-simulator (demo and test installations)",
            [
                Panel(
                    "Simulated devices",
                    [
                        q("sum(wasim_devices_linked)", "linked"),
                        q("sum(wasim_devices_connected)", "connected"),
                        q("sum(wasim_driver_connections)", "driver sockets"),
                    ],
                ),
                Panel(
                    "Simulated network per minute",
                    [
                        q(
                            "sum(rate(wasim_messages_received_total[$__rate_interval])) * 60",
                            "received",
                        ),
                        q(
                            "sum by (reason) (rate(wasim_sends_refused_total"
                            "[$__rate_interval])) * 60",
                            "refused {{reason}}",
                        ),
                        q("sum(rate(wasim_bans_total[$__rate_interval])) * 60", "bans"),
                    ],
                ),
            ],
        ),
    ],
)

BUS = Dashboard(
    uid="wacast-bus",
    title="wacast / Bus and consumer health",
    description="Event store appends and conflicts, consumer backlogs, redeliveries, dead letters.",
    tags=["nats"],
    rows=[
        (
            "Event store",
            [
                Panel(
                    "Events appended per second by stream",
                    [
                        q(
                            "sum by (stream) (rate(wacast_eventstore_appends_total"
                            "[$__rate_interval]))",
                            "{{stream}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Append latency",
                    quantiles("wacast_eventstore_append_seconds"),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Concurrency conflicts per second",
                    [
                        q(
                            "sum by (job) (rate(wacast_eventstore_conflicts_total"
                            "[$__rate_interval]))",
                            "{{job}}",
                        )
                    ],
                    width=8,
                ),
            ],
        ),
        (
            "Consumers",
            [
                Panel(
                    "Backlog (not yet delivered) by consumer",
                    [q("max by (consumer) (wacast_consumer_pending_messages)", "{{consumer}}")],
                    width=8,
                ),
                Panel(
                    "Delivered, not acknowledged, by consumer",
                    [
                        q(
                            "max by (consumer) (wacast_consumer_ack_pending_messages)",
                            "{{consumer}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Redeliveries per second by consumer",
                    [
                        q(
                            "sum by (consumer) (rate(wacast_consumer_redeliveries_total"
                            "[$__rate_interval]))",
                            "{{consumer}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Dead letters (range) by stream and consumer",
                    [
                        q(
                            "sum by (stream, consumer) (increase(wacast_dead_letters_total"
                            "[$__range]))",
                            "{{stream}} {{consumer}}",
                        )
                    ],
                    kind="bargauge",
                    width=12,
                    options={"orientation": "horizontal", "displayMode": "basic"},
                ),
                Panel(
                    "Services up",
                    [q("up", "{{job}} {{instance}}")],
                    width=12,
                ),
            ],
        ),
    ],
)

PROJECTIONS = Dashboard(
    uid="wacast-projections",
    title="wacast / Projections",
    description="Read models in Postgres: lag behind the streams, apply rate, batch time.",
    tags=["postgres"],
    rows=[
        (
            "Projections",
            [
                Panel(
                    "Lag (events behind the stream's end)",
                    [
                        q(
                            "max by (projection, stream) (wacast_projection_lag_events)",
                            "{{projection}} / {{stream}}",
                        )
                    ],
                    width=24,
                ),
                Panel(
                    "Events applied per second",
                    [
                        q(
                            "sum by (projection) (rate(wacast_projection_events_applied_total"
                            "[$__rate_interval]))",
                            "{{projection}}",
                        )
                    ],
                ),
                Panel(
                    "Batch apply and commit time (p95)",
                    [
                        q(
                            "histogram_quantile(0.95, sum by (le, projection) "
                            "(rate(wacast_projection_batch_seconds_bucket[$__rate_interval])))",
                            "{{projection}}",
                        )
                    ],
                    unit="s",
                ),
            ],
        ),
    ],
)

API = Dashboard(
    uid="wacast-api",
    title="wacast / API",
    description="HTTP requests of the public API (and of every service's health endpoints).",
    tags=["http"],
    variables=[
        {
            "type": "query",
            "name": "service",
            "label": "service",
            "datasource": DATASOURCE,
            "query": {
                "query": "label_values(wacast_http_requests_total, service)",
                "refId": "service",
            },
            "definition": "label_values(wacast_http_requests_total, service)",
            "current": {"text": "api-gateway", "value": "api-gateway"},
            "refresh": 2,
            "includeAll": False,
            "multi": False,
        }
    ],
    rows=[
        (
            "Requests",
            [
                Panel(
                    "Requests per second by status",
                    [
                        q(
                            "sum by (status) (rate(wacast_http_requests_total"
                            '{service="$service"}[$__rate_interval]))',
                            "{{status}}",
                        )
                    ],
                    unit="reqps",
                ),
                Panel(
                    "Server errors (5xx share)",
                    [
                        q(
                            "sum(rate(wacast_http_requests_total"
                            '{service="$service", status=~"5.."}[$__rate_interval]))'
                            " / clamp_min(sum(rate(wacast_http_requests_total"
                            '{service="$service"}[$__rate_interval])), 1e-9)',
                            "5xx",
                        )
                    ],
                    unit="percentunit",
                ),
                Panel(
                    "Latency",
                    quantiles("wacast_http_request_duration_seconds", "", 'service="$service"'),
                    unit="s",
                ),
                Panel(
                    "p95 latency by route",
                    [
                        q(
                            "histogram_quantile(0.95, sum by (le, method, route) (rate("
                            'wacast_http_request_duration_seconds_bucket{service="$service"}'
                            "[$__rate_interval])))",
                            "{{method}} {{route}}",
                        )
                    ],
                    unit="s",
                ),
                Panel(
                    "Busiest routes",
                    [
                        q(
                            "topk(15, sum by (method, route) (rate(wacast_http_requests_total"
                            '{service="$service"}[$__rate_interval])))',
                            "{{method}} {{route}}",
                        )
                    ],
                    unit="reqps",
                    width=24,
                ),
            ],
        ),
    ],
)

DASHBOARDS = (CAMPAIGNS, DEVICES, BUS, PROJECTIONS, API)


def files() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{board.uid}.json": json.dumps(render(board), indent=2, sort_keys=False) + "\n"
        for board in DASHBOARDS
    }


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in files().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
