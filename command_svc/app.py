"""The command service process: ``voting command-svc``."""

from __future__ import annotations

import asyncio
import contextlib

from command_svc.appender import EventAppender
from command_svc.authorization import authorizer_for
from command_svc.commands import CommandHandler, CommandLimits
from command_svc.counted import DynamoDBCountedVotes
from command_svc.idempotency import RequestLedger, SharedRequests
from command_svc.lifecycle import PollLifecycle
from command_svc.polls import DynamoDBPollStore
from command_svc.ratelimit import TokenBuckets
from command_svc.service import CommandService
from voting import dynamodb, runtime, telemetry
from voting import redis as redis_clients
from voting.config import Settings
from voting.identity import VoterKeys
from voting.kafka import AsyncProducer, KafkaClients
from voting.polls import PollCache
from voting.receipts import ReceiptSigner
from voting.server import GrpcServer, Service
from voting.v1 import command_service_pb2

SERVICE_DESCRIPTOR = command_service_pb2.DESCRIPTOR.services_by_name["CommandService"]


async def serve(settings: Settings) -> None:
    kafka = KafkaClients(settings.kafka, settings.topics)
    await asyncio.to_thread(lambda: kafka.verify_topics(timeout_s=10, unreachable_ok=True))
    producer = AsyncProducer(
        lambda: kafka.producer(
            client_id="command-svc",
            **{"message.timeout.ms": int(settings.command.produce_timeout_s * 1000)},
        ),
        timeout_s=settings.command.produce_timeout_s,
    )
    authorizer = authorizer_for(settings.auth, settings.security)
    # Rate limit buckets are shared through Redis, with a short timeout: when Redis is
    # slow or down, each process falls back to its own buckets and writes go on.
    limits_redis = redis_clients.client(settings.redis, timeout_s=0.25)
    rates = settings.rate_limits
    async with dynamodb.client(settings.dynamodb) as ddb:
        timeout_s = settings.dynamodb.request_timeout_s
        store = DynamoDBPollStore(ddb, settings.dynamodb.polls_table, timeout_s=timeout_s)
        handler = CommandHandler(
            store=store,
            cache=PollCache(
                store.get,
                ttl_s=settings.command.poll_cache_ttl_s,
                max_staleness_s=settings.command.poll_max_staleness_s,
            ),
            appender=EventAppender(producer, settings.topics),
            authorizer=authorizer,
            ledger=RequestLedger(
                ttl_s=settings.command.idempotency_ttl_s,
                capacity=settings.command.idempotency_cache_size,
            ),
            shared=SharedRequests(
                limits_redis,
                ttl_s=settings.command.idempotency_ttl_s,
                claim_ttl_s=settings.command.produce_timeout_s + 5,
            ),
            counted=DynamoDBCountedVotes(ddb, settings.dynamodb.votes_table, timeout_s=timeout_s),
            voter_keys=VoterKeys.from_settings(settings.security),
            limits=CommandLimits(
                max_batch=settings.command.max_batch,
                max_inflight_votes=settings.command.max_inflight_votes,
                ledger_shards=settings.dynamodb.ledger_shards,
            ),
            voter_limits=TokenBuckets(
                limits_redis, prefix="rl", rate=rates.voter_per_s, burst=rates.voter_burst
            ),
            client_limits=TokenBuckets(
                limits_redis, prefix="rl", rate=rates.client_per_s, burst=rates.client_burst
            ),
            receipts=ReceiptSigner.from_settings(settings.receipts, settings.security),
        )
        servicer = CommandService(
            handler,
            authorizer,
            max_batch=settings.command.max_batch,
            require_deadline=settings.auth.require_deadline,
            cast_vote_linger_s=settings.command.cast_vote_linger_ms / 1000,
        )
        server = GrpcServer(
            listen=settings.command.listen,
            settings=settings.server,
            tls=settings.tls,
            services=[Service.of(SERVICE_DESCRIPTOR, servicer)],
        )
        lifecycle = asyncio.create_task(PollLifecycle(store, handler, interval_s=2.0).run())
        try:
            await server.serve_until_signal()
        finally:
            lifecycle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lifecycle
            await producer.close()
            await limits_redis.aclose()


def main() -> int:
    settings = Settings.from_env()
    runtime.setup("command-svc", settings)
    asyncio.run(serve(settings))
    telemetry.shutdown()
    return 0
