"""``devkit bench sse``: browsers (SSE) per gateway process, beside gRPC streams per query
process, measured in the same run on one private stack.

Both ramps follow one poll whose results change at 10/s (then 1/s), driven straight into
the read model (``bench.read.ChangeDriver``), so the figures are the fan-out's alone:
follower swarms (separate processes) double-ish their count until the push p99 (receive
time minus the snapshot's ``updated_at``) passes 100 ms, as in ``devkit bench read``.

- SSE: ``bench.followers`` swarms on the gateway's ``/api/polls/{id}/events``; the gateway
  holds ONE upstream WatchResults stream for all of them.
- gRPC: ``bench.subscribers`` swarms of WatchResults streams on the query service.

A change waits for the query service's coalescing window (up to 100 ms at 10/s), and with
a driver at exactly that rate the wait locks to a phase that differs from step to step.
So each step also runs a probe, one WatchResults stream straight on the query service:
its latency is the part every follower shares, and a step's p99 minus the probe's is
what that fan-out path (gateway + HTTP, or gRPC streams) adds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from devkit.bench.environment import cpu_seconds, machine, peak_rss_mib, private_stack, write_json
from devkit.bench.polls import create_polls
from devkit.bench.read import (
    PUSH_P99_LIMIT_MS,
    RAMP_1HZ,
    RAMP_10HZ,
    ChangeDriver,
    capped,
    ramp,
)
from devkit.bench.stats import percentile, rounded
from devkit.stack.components import grpc_serving
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc


class Probe:
    """One WatchResults stream on the query service, read in a thread, for one step."""

    def __init__(self, target: str, poll_id: str) -> None:
        self._channel = grpc.insecure_channel(target)
        stub = query_service_pb2_grpc.QueryServiceStub(self._channel)
        self._call = stub.WatchResults(q.WatchResultsRequest(poll_id=poll_id))
        self.latencies: list[float] = []
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._call.cancel()
        self._thread.join()
        self._channel.close()

    def figures(self) -> dict[str, float]:
        measured = self.latencies[1:]  # the first one is the snapshot on connect
        return {
            "probe_p50_ms": rounded(percentile(measured, 50)),
            "probe_p99_ms": rounded(percentile(measured, 99)),
        }

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for message in self._call:
                now = time.time() * 1000
                self.latencies.append(now - message.results.updated_at.ToMilliseconds())


def _at_limit(steps: list[dict[str, Any]], best: int) -> dict[str, Any] | None:
    return next((s for s in steps if s["subscribers"] == best), None)


def run(
    *, seconds: float, json_path: Path | None, max_followers: int | None = None
) -> dict[str, Any]:
    services = ("command", "worker", "projector", "query", "gateway")
    with private_stack(services=services) as stack:
        settings = stack.settings()
        (poll_id,) = create_polls(settings, 1, 3, prefix="sse")
        stack.stop_services(["worker", "projector", "command"])  # the read side has the box
        assert grpc_serving(settings.query.listen)
        gateway = f"http://{settings.gateway.listen}"
        gateway_pid = stack.children["gateway"].pid
        figures: dict[str, Any] = {}
        for hz, every in ((10.0, RAMP_10HZ), (1.0, RAMP_1HZ)):
            counts = capped(every, max_followers)
            window = max(3.0, seconds / 4) if hz >= 10 else max(6.0, seconds / 2)

            probes: list[dict[str, float]] = []

            @contextlib.contextmanager
            def driver(hz: float = hz, probes: list[dict[str, float]] = probes) -> Iterator[None]:
                with (
                    ChangeDriver(settings.redis.url, poll_id, hz),
                    Probe(settings.query.listen, poll_id) as probe,
                ):
                    yield
                probes.append(probe.figures())

            cpu_before = cpu_seconds(gateway_pid)
            sse_best, sse_steps = ramp(
                gateway, poll_id, counts, window, driver, module="devkit.bench.followers"
            )
            figures[f"gateway_cpu_s_{int(hz)}hz_ramp"] = rounded(
                cpu_seconds(gateway_pid) - cpu_before
            )
            grpc_best, grpc_steps = ramp(settings.query.listen, poll_id, counts, window, driver)
            for step, probe in zip([*sse_steps, *grpc_steps], probes, strict=True):
                step.update(probe)
                step["added_p99_ms"] = rounded(max(0.0, step["p99_ms"] - probe["probe_p99_ms"]))
            for name, best, steps in (
                ("sse", sse_best, sse_steps),
                ("grpc", grpc_best, grpc_steps),
            ):
                at_limit = _at_limit(steps, best)
                figures[f"{name}_followers_per_process_{int(hz)}hz"] = best
                figures[f"{name}_p99_ms_at_limit_{int(hz)}hz"] = (
                    rounded(at_limit["p99_ms"]) if at_limit else None
                )
                # The ramp ran out of counts before the p99 limit: the figure is a floor.
                figures[f"{name}_ramp_exhausted_{int(hz)}hz"] = best == counts[-1]
                figures[f"{name}_steps_{int(hz)}hz"] = steps
        figures["gateway_peak_rss_mib"] = rounded(peak_rss_mib(gateway_pid))
    result: dict[str, Any] = {
        "benchmark": "sse",
        "seconds": seconds,
        "push_p99_limit_ms": PUSH_P99_LIMIT_MS,
        "machine": machine(),
        **figures,
        "ratios": {
            f"sse_to_grpc_{hz}hz": rounded(
                figures[f"sse_followers_per_process_{hz}hz"]
                / max(figures[f"grpc_followers_per_process_{hz}hz"], 1),
                3,
            )
            for hz in (10, 1)
        },
    }
    result["json"] = str(write_json(result, json_path))
    return result
