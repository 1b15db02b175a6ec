"""Traces, metrics and logs from the real services (Jaeger-compatible OTLP, Prometheus)."""

from __future__ import annotations

import re
import threading
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from devkit.stack.stack import Stack
from tests.harness import Deployment, VoteLoad, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q

pytestmark = pytest.mark.slow
SECRET_VOTER = "alice-secret-voter-7f3a"


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver, like Jaeger's, that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, trace_pb2.Span]] = []
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: bytes) -> list[tuple[str, trace_pb2.Span]]:
        with self._lock:
            return [(s, span) for s, span in self.spans if span.trace_id == trace_id]


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(0)


@pytest.fixture(scope="module")
def traced(
    infra: Stack, collector: tuple[Collector, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    d = Deployment(infra, tmp_path_factory.mktemp("traced"))
    d.start(
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector[1]}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "VOTING_LOG_LEVEL": "DEBUG",
        }
    )
    yield d
    d.stop()


def test_one_vote_is_one_trace_across_command_worker_and_projector(
    traced: Deployment, collector: tuple[Collector, int]
) -> None:
    spans = collector[0]
    poll_id = traced.create_poll()
    traced.commands.CastVote(
        cmd.CastVoteRequest(
            poll_id=poll_id, voter_id=SECRET_VOTER, option_id="a", request_id="traced-1"
        ),
        timeout=10,
    )
    cast: list[trace_pb2.Span] = []

    def vote_traced() -> bool:
        cast[:] = [
            span
            for service, span in spans.spans
            if service == "voting-command" and span.name.endswith("CastVote")
        ]
        if not cast:
            return False
        services = {service for service, _ in spans.trace(cast[-1].trace_id)}
        return {"voting-command", "voting-worker", "voting-projector"} <= services

    try:
        wait_until(vote_traced, timeout_s=60, interval_s=0.5, what="the vote's spans")
    except AssertionError:
        seen = sorted(
            {(service, span.name, span.trace_id.hex()[:8]) for service, span in spans.spans}
        )
        raise AssertionError(f"spans received: {seen}") from None
    trace = spans.trace(cast[-1].trace_id)
    by_id = {span.span_id: (service, span) for service, span in trace}

    def parent(span: trace_pb2.Span) -> tuple[str, trace_pb2.Span]:
        assert span.parent_span_id in by_id, f"{span.name} has no parent in the trace"
        return by_id[span.parent_span_id]

    named = {(service, span.name): span for service, span in trace}
    topics = traced.settings.topics
    server = cast[-1]
    publish = named[("voting-command", f"{topics.votes} publish")]
    process = named[("voting-worker", f"{topics.votes} process")]
    assert parent(publish)[1].span_id == server.span_id
    assert parent(process) == ("voting-command", publish)
    for step in ("decide", "dynamodb write", f"{topics.vote_results} publish"):
        assert parent(named[("voting-worker", step)])[1].span_id == process.span_id
    apply = named[("voting-projector", f"{topics.vote_results} apply")]
    assert parent(apply)[1].span_id == process.span_id
    assert apply.links, "the vote's apply span links to the projector's batch span"
    assert all(span.end_time_unix_nano >= span.start_time_unix_nano for _, span in trace)

    # Logs written inside the vote's request carry its trace id.
    trace_hex = server.trace_id.hex()
    assert traced.log_count("command", f'"trace_id": "{trace_hex}"') >= 1


def metrics(deployment: Deployment, service: str) -> str:
    port = deployment.stack.options.metrics_ports[service]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def value(text: str, name: str, **labels: str) -> float:
    """The sum of a series' samples matching ``labels``."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"no {name} {labels} in /metrics"
    return total


def test_every_service_exposes_its_series(traced: Deployment) -> None:
    poll_id = traced.create_poll()
    load = VoteLoad(traced, poll_id, batch=20, pause_s=0.05)
    for _ in range(10):
        load.send_batch()
    watch = traced.queries.WatchResults(q.WatchResultsRequest(poll_id=poll_id), timeout=60)
    next(watch)
    load.send_batch()
    next(watch)
    accepted = len({a.voter_id for a in load.acks})
    topics = traced.settings.topics

    # The lag probe samples every few seconds, so a sample taken before the last decision
    # can still show records behind: wait for a sample after them, not the first one.
    def settled() -> bool:
        text = metrics(traced, "worker")
        return (
            "voting_consumer_lag_records{" in text
            and value(text, "voting_worker_decisions_total", outcome="accepted") >= accepted
            and value(text, "voting_consumer_lag_records", topic=topics.votes) == 0
        )

    wait_until(settled, timeout_s=60, interval_s=1, what="the worker's decisions and no lag")
    command = metrics(traced, "command")
    assert (
        value(command, "grpc_server_handled_total", grpc_method="CastVotes", grpc_code="OK") >= 11
    )
    assert value(command, "grpc_server_handling_seconds_count", grpc_method="CastVotes") >= 11
    assert value(command, "voting_votes_appended_total") >= len(load.acks)
    worker = metrics(traced, "worker")
    assert (
        value(worker, "voting_worker_decisions_total", outcome="duplicate")
        == len(load.acks) - accepted
    )
    assert value(worker, "voting_worker_stage_seconds_count", stage="write") >= 1
    projector = metrics(traced, "projector")
    assert value(projector, "voting_projection_lag_seconds_count") >= len(load.acks)
    assert value(projector, "voting_projection_staleness_seconds") < 30
    wait_until(
        lambda: "voting_consumer_lag_records{" in metrics(traced, "projector"),
        timeout_s=30,
        what="projector lag",
    )
    assert (
        value(
            metrics(traced, "projector"), "voting_consumer_lag_records", topic=topics.vote_results
        )
        < 1000
    )
    query = metrics(traced, "query")
    assert value(query, "voting_subscribers") == 1
    assert value(query, "voting_pushes_total") >= 2
    assert value(query, "voting_push_latency_seconds_count") > 0
    traced.commands.ClosePoll(cmd.ClosePollRequest(request_id="close", poll_id=poll_id), timeout=30)
    for _ in watch:
        pass  # the stream ends after the FINAL snapshot
    wait_until(
        lambda: "voting_recounts_total{" in metrics(traced, "projector"),
        timeout_s=60,
        what="the recount's series",
    )
    assert value(metrics(traced, "projector"), "voting_recounts_total", outcome="matched") >= 1
    assert value(metrics(traced, "query"), "voting_subscribers") == 0


def test_no_log_line_or_span_holds_a_raw_voter_id(
    traced: Deployment, collector: tuple[Collector, int]
) -> None:
    poll_id = traced.create_poll()
    traced.commands.CastVotes(
        cmd.CastVotesRequest(
            requests=[
                cmd.CastVoteRequest(poll_id=poll_id, voter_id=SECRET_VOTER, option_id="a"),
                cmd.CastVoteRequest(poll_id=poll_id, voter_id=SECRET_VOTER, option_id="b"),
                cmd.CastVoteRequest(poll_id=poll_id, voter_id="", option_id="b"),
            ]
        ),
        timeout=10,
    )
    wait_until(
        lambda: traced.redis_counts(poll_id).get("a") == 1, timeout_s=60, what="the vote counted"
    )
    logs = Path(traced.stack.log_dir)
    leaked = defaultdict(list)
    for path in logs.glob("*.log"):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if SECRET_VOTER in line:
                leaked[path.name].append(number)
    assert not leaked, f"raw voter ids in logs: {dict(leaked)}"
    for _, span in collector[0].spans:
        text = str(span)
        assert SECRET_VOTER not in text, f"raw voter id in span {span.name}"
    assert re.search(r'"trace_id": "[0-9a-f]{32}"', (logs / "command.log").read_text())
