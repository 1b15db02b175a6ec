"""The bare anchors of the command path: ``python -m devkit.bench.bare --port P``.

A grpc.aio server on the command contract that does only what no command service can
avoid, so the command service's figures have a limit measured like for like:

- ``CastVotes``: parses the batch, builds each vote's VoteCast event (same fields,
  sizes and headers as the command service's), produces the records with the command
  service's producer settings (``KafkaClients.producer`` through ``AsyncProducer``),
  and answers each vote with its position. No validation, authorization, idempotency,
  rate limit, poll lookup, metrics or tracing.
- ``CastVote``: a unary echo: parses the request and answers at once (the gRPC cost
  of one call, which bounds a unary CastVote whatever it does).

Settings come from the usual VOTING_* environment (the broker). The records go to a
topic of their own (``--topic``), so no worker decides them.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import grpc
from google.rpc import code_pb2, status_pb2

from devkit.bench.baseline import unary
from voting import events
from voting.config import ServerSettings, Settings
from voting.errors import DeliveryError
from voting.kafka import AsyncProducer, KafkaClients, Outgoing
from voting.server import server_options
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import consistency_pb2, events_pb2

_HEADERS = events.headers_for(events_pb2.VoteCast)


class Bare:
    def __init__(self, producer: AsyncProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def cast_votes(
        self, request: cmd.CastVotesRequest, context: Any
    ) -> cmd.CastVotesResponse:
        now_ms = time.time_ns() // 1_000_000
        records = []
        for vote in request.requests:
            event = events_pb2.VoteCast(
                event_id=str(uuid.uuid4()),
                vote_id=str(uuid.uuid4()),
                poll_id=vote.poll_id,
                voter_key=vote.voter_id.encode().hex()[:32].ljust(32, "0"),
                option_id=vote.option_id,
            )
            event.occurred_at.FromMilliseconds(now_ms)
            records.append(
                Outgoing(
                    self._topic,
                    event.SerializeToString(),
                    key=f"{event.poll_id}/{event.voter_key}".encode(),
                    headers=_HEADERS,
                )
            )
        delivered = await self._producer.send_batch(records)
        results = []
        for record, outcome in zip(request.requests, delivered, strict=True):
            if isinstance(outcome, DeliveryError):
                status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(outcome))
                results.append(cmd.CastVoteResult(status=status))
                continue
            reply = cmd.CastVoteResponse(
                vote_id=record.request_id,
                consistency_token=consistency_pb2.ConsistencyToken(
                    position=consistency_pb2.PartitionOffset(
                        partition=outcome.partition, offset=outcome.offset
                    )
                ),
            )
            reply.received_at.FromMilliseconds(now_ms)
            results.append(cmd.CastVoteResult(status=status_pb2.Status(), response=reply))
        return cmd.CastVotesResponse(results=results)

    async def cast_vote(self, request: cmd.CastVoteRequest, context: Any) -> cmd.CastVoteResponse:
        reply = cmd.CastVoteResponse(vote_id=request.request_id)
        reply.received_at.FromMilliseconds(time.time_ns() // 1_000_000)
        return reply


async def serve(port: int, topic: str) -> None:
    settings = Settings.from_env()
    kafka = KafkaClients(settings.kafka, settings.topics)
    producer = AsyncProducer(
        lambda: kafka.producer(
            client_id="bench-bare",
            **{"message.timeout.ms": int(settings.command.produce_timeout_s * 1000)},
        ),
        timeout_s=settings.command.produce_timeout_s,
    )
    bare = Bare(producer, topic)
    server = grpc.aio.server(options=server_options(ServerSettings()))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "voting.v1.CommandService",
                {
                    "CastVote": unary(bare.cast_vote, cmd.CastVoteRequest),
                    "CastVotes": unary(bare.cast_votes, cmd.CastVotesRequest),
                },
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await producer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True, help="a topic of its own, not votes'")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.topic))


if __name__ == "__main__":
    main()
