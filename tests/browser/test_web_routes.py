"""The dashboard's routes and its monitoring numbers, without a browser or a stack (fast)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from wacast.api_gateway.problems import EXCEPTION_HANDLERS
from wacast.api_gateway.web import web_router
from wacast.api_gateway.web.monitoring import metrics_urls, parse, per_minute
from wacast.api_gateway.web.routes import STATIC

GATEWAY = """\
# TYPE wacast_gateway_sends_total counter
wacast_gateway_sends_total{reason="",status="sent"} 40.0
wacast_gateway_sends_total{reason="not_on_whatsapp",status="failed"} 2.0
wacast_gateway_lanes_busy 3.0
wacast_gateway_queue_depth 17.0
wacast_gateway_devices{state="connected"} 4.0
wacast_gateway_devices{state="pairing"} 1.0
"""
REPORTS = """\
wacast_projection_lag_events{projection="reports",stream="MESSAGES"} 12.0
wacast_projection_lag_events{projection="reports",stream="LEADS"} 0.0
"""


def client() -> TestClient[Litestar]:
    gw: Any = SimpleNamespace(settings=SimpleNamespace(http_host="127.0.0.1"))
    app = Litestar(
        route_handlers=[web_router(gw)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    return TestClient(app)


PAGES = [
    "/app/sign-in",
    "/app/devices",
    "/app/leads",
    "/app/leads/lead_123",
    "/app/campaigns",
    "/app/campaigns/new",
    "/app/campaigns/cmp_123",
    "/app/sequences",
    "/app/sequences/new",
    "/app/sequences/seq_123",
    "/app/monitoring",
    "/app/settings",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_its_script_and_a_strict_policy(path: str) -> None:
    with client() as http:
        response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    html = response.text
    assert '<html lang="en">' in html
    for script in re.findall(r'<script src="(/app/static/[^"?]+)\?v=\w+"', html):
        assert (STATIC / script.removeprefix("/app/static/")).is_file(), script
    assert "<script>" not in html, "no inline scripts (the policy forbids them)"
    assert ' style="' not in html, "no inline styles (the policy forbids them)"


def test_ids_in_paths_reach_the_page_escaped_and_bad_ones_are_404() -> None:
    with client() as http:
        page = http.get("/app/campaigns/cmp_abc-1")
        bad = http.get("/app/campaigns/cmp%3Cscript%3E")
    assert 'data-campaign-id="cmp_abc-1"' in page.text
    assert bad.status_code == 404


def test_the_root_goes_to_the_devices_and_static_files_are_served() -> None:
    with client() as http:
        root = http.get("/", follow_redirects=False)
        css = http.get("/app/static/css/app.css")
        js = http.get("/app/static/js/core.js")
    assert root.status_code in (301, 302, 307)
    assert root.headers["location"] == "/app/devices"
    assert css.status_code == 200
    assert "max-width: 720px" in css.text
    assert js.status_code == 200
    assert "Authorization" in js.text


def test_the_monitoring_api_needs_a_key() -> None:
    with client() as http:
        response = http.get("/app/api/monitoring")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_metrics_are_summed_over_sources_and_lag_is_the_most_per_stream() -> None:
    found = parse([GATEWAY, GATEWAY, REPORTS])
    assert found.sent == 80.0
    assert found.failed == 4.0
    assert found.lanes_busy == 6.0
    assert found.queue_depth == 34.0
    assert found.devices == {"connected": 8.0, "pairing": 2.0}
    assert found.projection_lag == {"MESSAGES": 12.0, "LEADS": 0.0}
    assert parse([]).sent is None


def test_sends_per_minute_is_a_rate_between_two_readings() -> None:
    assert per_minute(30.0, 50.0, 0.0, 40.0) == 20.0
    assert per_minute(30.0, 5.0, 0.0, 40.0) == 0.0, "a restarted counter is no negative rate"
    assert per_minute(0.5, 50.0, 0.0, 40.0) is None, "too close together to tell"
    assert per_minute(30.0, 50.0, 0.0, None) is None


def test_metrics_urls_come_from_the_setting_else_from_the_dev_stack_ports() -> None:
    env = {"WACAST_GATEWAY_PORT": "8081", "WACAST_REPORTS_PORT": "8084"}
    assert metrics_urls("http://a:1/metrics, http://b:2/metrics", "127.0.0.1", env) == [
        "http://a:1/metrics",
        "http://b:2/metrics",
    ]
    assert metrics_urls("", "0.0.0.0", env) == [
        "http://127.0.0.1:8081/metrics",
        "http://127.0.0.1:8084/metrics",
    ]
    assert metrics_urls("", "127.0.0.1", {}) == []
