"""HTTP request metrics and server spans for any ASGI app (Litestar included).

`instrument(app, service)` wraps a whole ASGI application: every HTTP request is counted in
`wacast_http_requests_total{service,method,route,status}` and timed in
`wacast_http_request_duration_seconds{service,method,route}`, and runs in a server span that
continues the caller's trace (`traceparent` header). `route` is the route's template as
Litestar matched it (`/api/v1/campaigns/{campaign_id:str}`), never the raw path, so that ids
do not become labels; a request that matched no route is counted as `unmatched`.

The service host wraps its health app with it; the api-gateway wraps its own app the same
way (`http_server(instrument(app, "api-gateway"), ...)`), or adds
`middleware=[http_metrics_middleware("api-gateway")]` to its Litestar app (then requests that
fail routing, such as 404s, are not seen).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from wacast.runtime.tracing import start_span_from_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

REQUESTS = Counter(
    "wacast_http_requests_total",
    "HTTP requests answered, by route template and status code",
    ["service", "method", "route", "status"],
)
DURATION = Histogram(
    "wacast_http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: counted, but not worth a span each."""
UNMATCHED = "unmatched"


def route_of(scope: Scope) -> str:
    """The matched route template (bounded), or `unmatched`."""
    template = scope.get("path_template")
    return template if isinstance(template, str) and template else UNMATCHED


def method_of(scope: Scope) -> str:
    method = str(scope.get("method", "")).upper()
    return method if method in METHODS else "other"


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() in (b"traceparent", b"tracestate", b"baggage")
    }


class HttpMetrics:
    """ASGI middleware: counts, times and traces HTTP requests; passes anything else on."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") in UNTRACED:
            await self._measure(scope, receive, send)
            return
        method = method_of(scope)
        with start_span_from_headers(
            method, _headers(scope), kind=SpanKind.SERVER, attributes={"http.method": method}
        ) as span:
            status = await self._measure(scope, receive, send)
            route = route_of(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))

    async def _measure(self, scope: Scope, receive: Receive, send: Send) -> int:
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method, route = method_of(scope), route_of(scope)
            REQUESTS.labels(self.service, method, route, str(status)).inc()
            DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)
        return status


def instrument(app: ASGIApp, service: str) -> ASGIApp:
    """`app` with HTTP metrics and server spans (see the module's doc)."""
    return HttpMetrics(app, service)


def http_metrics_middleware(service: str) -> Callable[[ASGIApp], ASGIApp]:
    """For Litestar's `middleware=[...]`: the same, inside the app (after routing)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return HttpMetrics(app, service)

    return wrap
