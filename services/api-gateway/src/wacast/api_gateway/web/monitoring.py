"""`/app/api/monitoring`: what the Monitoring page shows, in one JSON answer.

Two parts:
- `tenant`: the caller's tenant at a glance (`reports.overview`: devices by status,
  messages by status, sends today), the same as `GET /api/v1/overview`;
- `system`: numbers only the services' Prometheus `/metrics` have (sends per minute, lanes
  busy, queue depth, devices by gateway state, projection lag). They are system-wide
  totals, never a tenant's objects. The api-gateway reads them from the URLs in its
  `monitoring_urls` setting when it has one, else (the dev stack) from the ports `./dev up`
  gives every service (`WACAST_GATEWAY_PORT`, `WACAST_REPORTS_PORT`,
  `WACAST_SEQUENCES_PORT`) on `http_host`. A source that does not answer is listed with
  its error; its numbers are simply missing.

Sends per minute is the rate of `wacast_gateway_sends_total` between this scrape and the
oldest one kept from the last two minutes (so the first answer has none yet).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from wacast.contracts import queries as q

DEV_STACK_PORTS = ("WACAST_GATEWAY_PORT", "WACAST_REPORTS_PORT", "WACAST_SEQUENCES_PORT")
SCRAPE_TIMEOUT_SECONDS = 2.0
RATE_WINDOW_SECONDS = 120.0
MIN_RATE_SPAN_SECONDS = 1.0


class Source(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    ok: bool
    error: str = ""


class SystemMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Totals over every source; None when no source exported the metric."""

    sends_per_minute: float | None = None
    failures_per_minute: float | None = None
    sends_total: float | None = None
    lanes_busy: float | None = None
    queue_depth: float | None = None
    devices: dict[str, float] = msgspec.field(default_factory=dict)
    projection_lag: dict[str, float] = msgspec.field(default_factory=dict)
    sources: list[Source] = msgspec.field(default_factory=list)


class Monitoring(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    tenant: q.Overview
    system: SystemMetrics


def metrics_urls(configured: str, host: str, env: Mapping[str, str]) -> list[str]:
    """The `/metrics` URLs to read: the configured ones, else the dev stack's."""
    urls = [u.strip() for u in configured.split(",") if u.strip()]
    if urls:
        return urls
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return [
        f"http://{shown}:{env[name]}/metrics"
        for name in DEV_STACK_PORTS
        if env.get(name, "").isdigit()
    ]


class Samples(msgspec.Struct, frozen=True, kw_only=True):
    """What one scrape of every source found, summed."""

    sent: float | None = None
    failed: float | None = None
    lanes_busy: float | None = None
    queue_depth: float | None = None
    devices: dict[str, float] = msgspec.field(default_factory=dict)
    projection_lag: dict[str, float] = msgspec.field(default_factory=dict)


def _add(total: float | None, value: float) -> float:
    return value if total is None else total + value


def parse(texts: list[str]) -> Samples:
    """Sum the metrics the page needs over the sources' exposition texts (lag: the most
    any source reports per stream)."""
    sent: float | None = None
    failed: float | None = None
    busy: float | None = None
    depth: float | None = None
    devices: dict[str, float] = {}
    lag: dict[str, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name, labels, value = sample.name, sample.labels, float(sample.value)
                if name == "wacast_gateway_sends_total":
                    if labels.get("status") == "sent":
                        sent = _add(sent, value)
                    elif labels.get("status") == "failed":
                        failed = _add(failed, value)
                elif name == "wacast_gateway_lanes_busy":
                    busy = _add(busy, value)
                elif name == "wacast_gateway_queue_depth":
                    depth = _add(depth, value)
                elif name == "wacast_gateway_devices":
                    state = labels.get("state", "")
                    devices[state] = devices.get(state, 0.0) + value
                elif name == "wacast_projection_lag_events":
                    stream = labels.get("stream", "")
                    lag[stream] = max(lag.get(stream, 0.0), value)
    return Samples(
        sent=sent,
        failed=failed,
        lanes_busy=busy,
        queue_depth=depth,
        devices=devices,
        projection_lag=lag,
    )


def per_minute(now: float, value: float | None, then: float, old: float | None) -> float | None:
    if value is None or old is None or now - then < MIN_RATE_SPAN_SECONDS:
        return None
    return round(max(0.0, value - old) * 60.0 / (now - then), 2)


class MetricsReader:
    """Scrapes the sources on demand and keeps the last two minutes of counter samples."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.history: deque[tuple[float, Samples]] = deque()

    async def _fetch(self, client: httpx.AsyncClient, url: str) -> tuple[Source, str]:
        try:
            response = await client.get(url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return Source(url=url, ok=False, error=f"{type(exc).__name__}: {exc}"[:300]), ""
        return Source(url=url, ok=True), response.text

    async def read(self) -> SystemMetrics:
        if not self.urls:
            return SystemMetrics(
                sources=[Source(url="", ok=False, error="no metrics URLs are configured")]
            )
        async with httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_SECONDS) as client:
            found = await asyncio.gather(*(self._fetch(client, url) for url in self.urls))
        now = time.monotonic()
        current = parse([text for _, text in found if text])
        while self.history and now - self.history[0][0] > RATE_WINDOW_SECONDS:
            self.history.popleft()
        then, old = self.history[0] if self.history else (now, Samples())
        self.history.append((now, current))
        return SystemMetrics(
            sends_per_minute=per_minute(now, current.sent, then, old.sent),
            failures_per_minute=per_minute(now, current.failed, then, old.failed),
            sends_total=current.sent,
            lanes_busy=current.lanes_busy,
            queue_depth=current.queue_depth,
            devices=current.devices,
            projection_lag=current.projection_lag,
            sources=[source for source, _ in found],
        )


def default_reader(configured: str, host: str) -> MetricsReader:
    return MetricsReader(metrics_urls(configured, host, os.environ))
