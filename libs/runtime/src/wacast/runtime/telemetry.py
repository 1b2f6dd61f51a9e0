"""OpenTelemetry set-up of a process, driven by the standard `OTEL_*` variables.

Export is off by default: with none of the variables below set, the process records spans
in memory only (so trace and span ids exist, travel in NATS headers and appear in every
log line) and sends nothing anywhere. It turns on when:

- `OTEL_TRACES_EXPORTER` lists `otlp` and/or `console` (`none` turns export off), or
- `OTEL_TRACES_EXPORTER` is unset and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then `otlp` is implied.

The OTLP exporter speaks `http/protobuf` (the one installed); its other standard variables
(`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`, certificates) and the batch
processor's (`OTEL_BSP_*`) and sampler's (`OTEL_TRACES_SAMPLER`, `..._ARG`) are read by the
SDK itself. `OTEL_SERVICE_NAME` overrides the service name, `OTEL_RESOURCE_ATTRIBUTES` adds
resource attributes, and `OTEL_SDK_DISABLED=true` leaves the SDK out altogether (no spans,
only the trace context that arrives in headers is passed on).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

log = logging.getLogger("wacast.telemetry")

EXPORTERS = ("otlp", "console", "none")
SUPPORTED_PROTOCOLS = ("http/protobuf",)


class TelemetryError(Exception):
    """An `OTEL_*` variable has a value this process cannot honour; names the variable."""


@dataclass
class Telemetry:
    """What `setup` configured: the provider (None when the SDK is disabled)."""

    service_name: str
    provider: TracerProvider | None
    exporters: list[str] = field(default_factory=list)

    def shutdown(self) -> None:
        """Flush and stop the exporters (also done at interpreter exit)."""
        if self.provider is not None:
            self.provider.shutdown()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """Which exporters the environment asks for: [] means export is off."""
    raw = env.get("OTEL_TRACES_EXPORTER")
    if raw is None or not raw.strip():
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TelemetryError(
            f"OTEL_TRACES_EXPORTER={raw!r} is invalid: {', '.join(unknown)} is not one of "
            f"{', '.join(EXPORTERS)}"
        )
    return [] if "none" in names else list(dict.fromkeys(names))


def otlp_endpoint(env: Mapping[str, str]) -> str:
    """The traces URL: the signal-specific variable as it is, or the base one + /v1/traces."""
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
    return base.rstrip("/") + "/v1/traces"


def _check_protocol(env: Mapping[str, str]) -> None:
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(variable)
        if value:
            if value not in SUPPORTED_PROTOCOLS:
                raise TelemetryError(
                    f"{variable}={value!r} is invalid: this build exports "
                    f"{', '.join(SUPPORTED_PROTOCOLS)} only"
                )
            return


def make_exporters(env: Mapping[str, str]) -> list[tuple[str, SpanExporter]]:
    """The exporters the environment asks for (none by default). Nothing connects yet."""
    made: list[tuple[str, SpanExporter]] = []
    for name in exporter_names(env):
        if name == "otlp":
            _check_protocol(env)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            made.append((name, OTLPSpanExporter(endpoint=otlp_endpoint(env))))
        elif name == "console":
            made.append((name, ConsoleSpanExporter()))
    return made


def make_provider(
    service_name: str,
    env: Mapping[str, str] | None = None,
    exporters: Sequence[SpanExporter] = (),
    *,
    batch: bool = True,
) -> TracerProvider:
    """A tracer provider for `service_name` exporting to `exporters` (none: record only)."""
    source = os.environ if env is None else env
    name = source.get("OTEL_SERVICE_NAME") or service_name
    resource = Resource.create({"service.name": name, "service.namespace": "wacast"})
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    return provider


_installed: Telemetry | None = None


def setup(service_name: str, env: Mapping[str, str] | None = None) -> Telemetry:
    """Configure tracing for this process once; a second call returns the first set-up.

    Raises `TelemetryError` (naming the variable) for a value it cannot honour, so that a
    service stops at start-up like it does for a bad `WACAST_*` setting.
    """
    global _installed
    if _installed is not None:
        return _installed
    source = os.environ if env is None else env
    if _truthy(source.get("OTEL_SDK_DISABLED")):
        _installed = Telemetry(service_name, None)
        return _installed
    made = make_exporters(source)
    provider = make_provider(service_name, source, [exporter for _, exporter in made])
    trace.set_tracer_provider(provider)
    names = [name for name, _ in made]
    _installed = Telemetry(service_name, provider, names)
    if names:
        where = otlp_endpoint(source) if "otlp" in names else "stdout"
        log.info("exporting traces", extra={"exporters": names, "endpoint": where})
    return _installed
