"""Traces: off by default, configured by `OTEL_*`, continued across NATS hops by headers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from wacast.contracts.devices import DeviceRegistered
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime import telemetry
from wacast.runtime.consumer import consume_events, poll_once, unwatch
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import Append, Conflict, EventStore
from wacast.runtime.http_metrics import instrument
from wacast.runtime.projection import Envelope
from wacast.runtime.telemetry import TelemetryError, exporter_names, make_exporters
from wacast.runtime.tracing import inject, start_span, start_span_from_headers

AT = datetime(2030, 1, 1, tzinfo=UTC)


def test_export_is_off_unless_the_environment_asks_for_it() -> None:
    assert exporter_names({}) == []
    assert make_exporters({}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    empty = {"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}  # compose's defaults
    assert exporter_names(empty) == []
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == ["otlp"]
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    assert exporter_names(both) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp, console"}) == ["otlp", "console"]


def test_the_otlp_exporter_uses_the_standard_endpoint_variables_without_connecting() -> None:
    made = dict(make_exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}))
    otlp = made["otlp"]
    assert isinstance(otlp, OTLPSpanExporter)
    assert otlp._endpoint == "http://collector:4318/v1/traces"
    specific = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/custom"}
    assert dict(make_exporters(specific))["otlp"]._endpoint == "http://t:4318/custom"  # type: ignore[attr-defined]
    console = dict(make_exporters({"OTEL_TRACES_EXPORTER": "console"}))
    assert isinstance(console["console"], ConsoleSpanExporter)


def test_values_it_cannot_honour_name_the_variable() -> None:
    with pytest.raises(TelemetryError, match="OTEL_TRACES_EXPORTER"):
        exporter_names({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(TelemetryError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        make_exporters({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


def test_the_service_name_comes_from_otel_service_name_first() -> None:
    provider = telemetry.make_provider("campaign-service", {"OTEL_SERVICE_NAME": "campaigns-eu"})
    assert provider.resource.attributes["service.name"] == "campaigns-eu"
    provider = telemetry.make_provider("campaign-service", {})
    assert provider.resource.attributes["service.name"] == "campaign-service"
    assert provider.resource.attributes["service.namespace"] == "wacast"


def test_a_disabled_sdk_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_installed", None)
    configured = telemetry.setup("report-service", {"OTEL_SDK_DISABLED": "true"})
    assert configured.provider is None
    assert configured.exporters == []
    monkeypatch.setattr(telemetry, "_installed", None)


def test_a_span_started_from_injected_headers_is_a_child_of_the_sender() -> None:
    exporter = InMemorySpanExporter()
    provider = telemetry.make_provider("test", {}, [exporter], batch=False)
    tracer = provider.get_tracer("test")

    with tracer.start_as_current_span("POST /api/v1/campaigns", kind=SpanKind.SERVER) as root:
        headers = inject({"Nats-Msg-Id": "m1"})
    assert headers["Nats-Msg-Id"] == "m1"
    assert "traceparent" in headers

    with start_span_from_headers("campaigns process", headers, tracer=tracer) as span:
        assert trace.get_current_span() is span
        with start_span("driver.send", tracer=tracer):
            pass

    spans = {s.name: s for s in exporter.get_finished_spans()}
    sender = root.get_span_context()
    received = spans["campaigns process"]
    assert received.context is not None
    assert received.parent is not None
    assert received.context.trace_id == sender.trace_id
    assert received.parent.span_id == sender.span_id
    assert received.kind is SpanKind.CONSUMER
    driver = spans["driver.send"]
    assert driver.parent is not None
    assert driver.parent.span_id == span.get_span_context().span_id
    assert driver.context is not None
    assert driver.context.trace_id == sender.trace_id


def test_a_message_without_trace_context_starts_a_new_trace() -> None:
    exporter = InMemorySpanExporter()
    tracer = telemetry.make_provider("test", {}, [exporter], batch=False).get_tracer("test")
    with start_span_from_headers("orphan", {"Nats-Msg-Id": "x"}, tracer=tracer):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


async def test_http_requests_are_counted_by_route_template_and_status() -> None:
    from litestar import Litestar, get
    from litestar.params import Parameter
    from litestar.testing import AsyncTestClient
    from prometheus_client import REGISTRY

    @get("/items/{item_id:str}", sync_to_thread=False)
    def item(item_id: Annotated[str, Parameter()]) -> dict[str, str]:
        return {"id": item_id}

    app = instrument(Litestar(route_handlers=[item], openapi_config=None), "test-http")

    def count(route: str, status: str) -> float:
        labels = {"service": "test-http", "method": "GET", "route": route, "status": status}
        return REGISTRY.get_sample_value("wacast_http_requests_total", labels) or 0.0

    before_ok, before_missing = count("/items/{item_id}", "200"), count("unmatched", "404")
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/items/a1")).status_code == 200
        assert (await client.get("/items/b2")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    assert count("/items/{item_id}", "200") == before_ok + 2
    assert count("unmatched", "404") == before_missing + 1
    duration = REGISTRY.get_sample_value(
        "wacast_http_request_duration_seconds_count",
        {"service": "test-http", "method": "GET", "route": "/items/{item_id}"},
    )
    assert duration is not None
    assert duration >= 2


# -- the generic metrics every service gets ----------------------------------------------


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_appends_and_conflicts_are_counted_and_carry_the_trace(
    nc: Client, store: EventStore, streams: Topology
) -> None:
    registered = {"stream": "DEVICES", "type": "DeviceRegistered"}
    appended = _sample("wacast_eventstore_appends_total", registered)
    conflicts = _sample("wacast_eventstore_conflicts_total")
    tracer = telemetry.make_provider("test", {}).get_tracer("test")
    first = DeviceRegistered(
        tenant_id="acme", occurred_at=AT, device_id="d1", name="one", driver="sim"
    )
    with tracer.start_as_current_span("request") as root:
        await store.append(first.subject(streams), [first], msg_id="d1", expected=0)
    with pytest.raises(Conflict):
        await store.append(first.subject(streams), [first], msg_id="d1-again", expected=0)
    batch = [
        Append(e.subject(streams), e, msg_id=e.device_id, expected=0)
        for e in (
            DeviceRegistered(
                tenant_id="acme", occurred_at=AT, device_id=f"b{i}", name="b", driver="sim"
            )
            for i in range(3)
        )
    ]
    await store.append_batch(batch)

    assert _sample("wacast_eventstore_appends_total", registered) == appended + 4
    assert _sample("wacast_eventstore_conflicts_total") == conflicts + 1
    stored = await nc.jetstream().get_last_msg(streams.stream("DEVICES"), first.subject(streams))
    assert stored.headers is not None
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert stored.headers["traceparent"].split("-")[1] == trace_id


async def test_redeliveries_and_consumer_backlog_are_reported(
    nc: Client, store: EventStore, streams: Topology, dead_letters: DeadLetters
) -> None:
    durable = f"metrics-{streams.prefix}"
    redelivered = _sample("wacast_consumer_redeliveries_total", {"consumer": durable})
    failures: list[int] = []
    done = asyncio.Event()

    async def handle(envelope: Envelope) -> None:
        if not failures:
            failures.append(envelope.seq)
            raise RuntimeError("first attempt fails")
        done.set()

    broker = NatsBroker(nc.connected_url.geturl() if nc.connected_url else "")
    await broker.connect()
    try:
        consume_events(
            broker,
            streams,
            dead_letters,
            spec=DEVICES,
            subject=streams.all_of("device"),
            durable=durable,
            handle=handle,
        )
        event = DeviceRegistered(
            tenant_id="acme", occurred_at=AT, device_id="r1", name="r", driver="sim"
        )
        await store.append(event.subject(streams), [event], msg_id="r1", expected=0)
        await broker.start()
        await asyncio.wait_for(done.wait(), 20)
        assert (
            _sample("wacast_consumer_redeliveries_total", {"consumer": durable}) == redelivered + 1
        )
    finally:
        await broker.stop()
    for i in range(2):  # appended while nobody fetches: the backlog
        later = DeviceRegistered(
            tenant_id="acme", occurred_at=AT, device_id=f"p{i}", name="p", driver="sim"
        )
        await store.append(later.subject(streams), [later], msg_id=f"p{i}", expected=0)
    await poll_once(nc.jetstream(), streams.stream(""))
    assert _sample("wacast_consumer_pending_messages", {"consumer": durable}) == 2
    assert _sample("wacast_consumer_ack_pending_messages", {"consumer": durable}) == 0
    unwatch(durable)
    assert _sample("wacast_consumer_pending_messages", {"consumer": durable}) == 0
