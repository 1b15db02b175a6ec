"""The worker's part of a sampled vote's trace.

For each record whose ``traceparent`` says sampled, a consumer span starts when its
batch was taken and ends when the batch's transaction commits; its children are the
batch's decide, DynamoDB write and result-publish steps, timed once per batch. The
decision record carries the consumer span's context to the projector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from voting import telemetry


@dataclass(slots=True)
class BatchTrace:
    received_ns: int
    spans: list[Span] = field(default_factory=list)
    steps: dict[str, tuple[int, int]] = field(default_factory=dict)

    def consume(
        self, parent: Context, topic: str, partition: int, offset: int
    ) -> list[tuple[str, str | bytes | None]]:
        """Starts a record's consumer span; returns the header that continues its trace."""
        span = telemetry.tracer().start_span(
            f"{topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            start_time=self.received_ns,
            attributes={
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": offset,
            },
        )
        self.spans.append(span)
        return telemetry.inject(trace.set_span_in_context(span))

    def step(self, name: str, start_ns: int, end_ns: int) -> None:
        self.steps[name] = (start_ns, end_ns)

    def finish(self, *, ok: bool, error: str = "") -> None:
        end_ns = telemetry.now_ns()
        for span in self.spans:
            parent = trace.set_span_in_context(span)
            for name, (start, end) in self.steps.items():
                kind = SpanKind.PRODUCER if name.endswith("publish") else SpanKind.INTERNAL
                telemetry.span_at(name, parent=parent, start_ns=start, end_ns=end, kind=kind)
            if not ok:
                span.set_status(Status(StatusCode.ERROR, error))
            span.end(end_time=end_ns)
        self.spans.clear()
