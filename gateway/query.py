"""The gateway's client of the QueryService: protobuf in, UpstreamError on refusal."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import UpstreamError
from voting.config import TlsSettings
from voting.tls import aio_channel
from voting.v1 import poll_pb2, query_service_pb2_grpc, results_pb2
from voting.v1 import query_service_pb2 as q

QUERY_SERVICE = q.DESCRIPTOR.services_by_name["QueryService"].full_name
CALL_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 1.0
_CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    # A quiet WatchResults stream must still notice a query service that vanished
    # without closing its connections (host or network failure), to reconnect.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC's default grows to 120 s between connection attempts: after a long query
    # service outage, browsers would wait that long for the streams to come back.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # Per call, over every address the name resolves to: with the query service's
    # headless Service (one address per ready pod), the shared streams of the polls
    # spread over all query pods instead of sticking to the first.
    ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
]


class QueryClient:
    """Unary calls carry the browser's own ``Authorization`` header, so the query service
    decides what each browser may read; the shared WatchResults streams carry the
    gateway's token (``VOTING_GATEWAY_TOKEN``, scope ``read:*`` for private polls)."""

    def __init__(self, target: str, *, tls: TlsSettings, token: str = "") -> None:
        self.target = target
        self._channel = aio_channel(target, tls, _CHANNEL_OPTIONS)
        self._own = [("authorization", f"Bearer {token}")] if token else None
        self._queries: Any = query_service_pb2_grpc.QueryServiceStub(self._channel)
        self._health: Any = health_pb2_grpc.HealthStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def poll(self, poll_id: str, authorization: str | None = None) -> poll_pb2.Poll:
        reply = await self._unary(
            self._queries.GetPoll, q.GetPollRequest(poll_id=poll_id), authorization
        )
        poll: poll_pb2.Poll = reply.poll
        return poll

    async def list_polls(
        self, *, page_size: int, page_token: str, authorization: str | None = None
    ) -> q.ListPollsResponse:
        """A page of the polls the browser behind ``authorization`` may see."""
        request = q.ListPollsRequest(page_size=page_size, page_token=page_token)
        reply: q.ListPollsResponse = await self._unary(
            self._queries.ListPolls, request, authorization
        )
        return reply

    async def results(self, poll_id: str, authorization: str | None = None) -> results_pb2.Results:
        """The poll's results, as the browser behind ``authorization`` may read them."""
        reply = await self._unary(
            self._queries.GetResults, q.GetResultsRequest(poll_id=poll_id), authorization
        )
        results: results_pb2.Results = reply.results
        return results

    async def watch(
        self, poll_id: str, after_version: int
    ) -> AsyncGenerator[results_pb2.Results, None]:
        """WatchResults: snapshots newer than ``after_version`` until the FINAL one."""
        call = self._queries.WatchResults(
            q.WatchResultsRequest(poll_id=poll_id, after_version=after_version), metadata=self._own
        )
        try:
            async for message in call:
                yield message.results
        except grpc.aio.AioRpcError as exc:
            raise UpstreamError.from_rpc(exc) from exc
        finally:
            call.cancel()

    async def serving(self) -> bool:
        """Whether the QueryService answers its gRPC health check as SERVING."""
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(service=QUERY_SERVICE), timeout=HEALTH_TIMEOUT_S
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def _unary(self, method: Any, request: Any, authorization: str | None = None) -> Any:
        metadata = [("authorization", authorization)] if authorization else None
        try:
            return await method(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise UpstreamError.from_rpc(exc) from exc
