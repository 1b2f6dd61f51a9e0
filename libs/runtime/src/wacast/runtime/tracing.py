"""OpenTelemetry trace context carried in NATS headers (W3C `traceparent`/`tracestate`).

The sending side calls `inject` (the event store and the command requester do it for every
publish); the receiving side opens its span with `start_span_from_headers`, which makes it a
child of the span that sent the message, so one trace runs from the HTTP request through
every NATS hop to the driver send and the receipt.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import Attributes

tracer = trace.get_tracer("wacast")
_TRACER = tracer


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


def has_active_span() -> bool:
    """Whether there is a valid span to propagate (not the case with the SDK disabled)."""
    return trace.get_current_span().get_span_context().is_valid


@contextmanager
def start_span_from_headers(
    name: str,
    headers: Mapping[str, str] | None,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Attributes = None,
    tracer: Tracer | None = None,
) -> Iterator[Span]:
    """A current span for handling a received message, child of the sender's span.

    `headers` are the message's NATS (or HTTP) headers; without trace context in them the
    span continues the current trace, or starts a new one. Exceptions are recorded on the
    span and re-raised.
    """
    chosen = tracer or _TRACER
    with chosen.start_as_current_span(
        name, context=extract(headers), kind=kind, attributes=attributes
    ) as span:
        yield span


@contextmanager
def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
    tracer: Tracer | None = None,
) -> Iterator[Span]:
    """A current span for a piece of work (e.g. `driver.send`), child of the current one."""
    chosen = tracer or _TRACER
    with chosen.start_as_current_span(name, kind=kind, attributes=attributes) as span:
        yield span
