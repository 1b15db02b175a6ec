"""Traces, metrics and the context that ties log lines to traces; one setup per process.

Tracing is the OpenTelemetry SDK configured by the standard variables (OTEL_SERVICE_NAME,
OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, ...), exporting
OTLP over gRPC, which Jaeger ingests natively. It is off unless an endpoint is set.

A vote's trace crosses Kafka as a W3C ``traceparent`` record header. The services
propagate it themselves: their loops handle records in batches and transactions, which
the confluent-kafka instrumentation (one message at a time) does not see. Spans are
made only for records whose ``traceparent`` says sampled, so unsampled votes cost one
header lookup.

Background loops (the projector, the worker, the fan-out's refreshes) run with
instrumentation suppressed: otherwise every Redis or DynamoDB call they make would
start a trace of its own.

Metrics are Prometheus series served on ``/metrics`` (VOTING_METRICS_LISTEN).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import start_http_server

from voting.config import TelemetrySettings

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "voting"


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        return [v.decode() for k, v in carrier if k == key] or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()


def configure(service: str, settings: TelemetrySettings) -> None:
    """Tracing (if an OTLP endpoint is set) and the /metrics endpoint (if a listen address is)."""
    if settings.metrics_listen:
        host, _, port = settings.metrics_listen.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0")
    if not settings.otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.grpc import (  # noqa: PLC0415
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    resource = Resource.create({"service.name": settings.service_name or service})
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Never a span as long as a stream: WatchResults gets its own short spans instead.
    GrpcAioInstrumentorServer(
        filter_=filters.negate(
            filters.any_of(filters.method_name("WatchResults"), filters.health_check())
        )
    ).instrument()
    GrpcAioInstrumentorClient().instrument()
    RedisInstrumentor().instrument()
    AiobotocoreInstrumentor().instrument()
    log.info("tracing to %s", settings.otlp_endpoint)


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


def shutdown() -> None:
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "shutdown", None)
    if flush is not None:
        flush()


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Suppresses automatic instrumentation for a background loop (see the module doc)."""
    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def inject_current() -> list[tuple[str, str | bytes | None]]:
    """The current span's context as record headers (empty when not sampled)."""
    return inject(context.get_current())


def inject(ctx: Context | None) -> list[tuple[str, str | bytes | None]]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    value = carrier.get(TRACEPARENT)
    if value is None or not _sampled(value.encode()):
        return []
    return [(TRACEPARENT, value.encode())]


def extract(headers: Sequence[tuple[str, bytes]]) -> Context | None:
    """The sampled trace context a record carries, or None (the cheap, common case)."""
    for key, value in headers:
        if key == TRACEPARENT:
            if not _sampled(value):
                return None
            return _PROPAGATOR.extract(headers, getter=_GETTER)
    return None


def _sampled(traceparent: bytes) -> bool:
    """The W3C sampled flag: bit 0 of the last field (other bits, e.g. random, vary)."""
    try:
        return bool(int(traceparent[-2:], 16) & 1)
    except ValueError:
        return False


def span_at(
    name: str,
    *,
    parent: Context | None,
    start_ns: int,
    end_ns: int,
    kind: SpanKind = SpanKind.INTERNAL,
    links: Sequence[Link] = (),
    attributes: dict[str, Any] | None = None,
) -> Span:
    """A span of a step already timed (batch loops time steps once for all their records)."""
    span = tracer().start_span(
        name, context=parent, kind=kind, links=links, start_time=start_ns, attributes=attributes
    )
    span.end(end_time=end_ns)
    return span


def now_ns() -> int:
    return time.time_ns()


def trace_ids() -> dict[str, str]:
    """Ids of the current span, for log lines; empty outside a sampled span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
