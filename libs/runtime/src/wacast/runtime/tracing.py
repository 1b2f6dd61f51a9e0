"""OpenTelemetry trace context carried in NATS headers (W3C `traceparent`/`tracestate`)."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context

tracer = trace.get_tracer("wacast")


def inject(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers with the current trace context added (for a publish or request)."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str] | None) -> Context:
    """The trace context a received message carries (the current one when it has none)."""
    if not headers:
        return context.get_current()
    return propagate.extract(dict(headers))
