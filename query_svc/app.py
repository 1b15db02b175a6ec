"""The query service process: ``voting query-svc``."""

from __future__ import annotations

import asyncio

from query_svc.access import Access
from query_svc.feeds import FeedHub
from query_svc.read_model import ReadModelReader
from query_svc.service import QueryService
from voting import dynamodb, runtime, telemetry
from voting import redis as redis_clients
from voting.config import Settings
from voting.polls import PollCache, read_poll
from voting.receipts import ReceiptVerifier
from voting.server import GrpcServer, Service
from voting.v1 import query_service_pb2

SERVICE_DESCRIPTOR = query_service_pb2.DESCRIPTOR.services_by_name["QueryService"]


async def serve(settings: Settings) -> None:
    client = redis_clients.client(settings.redis)
    reader = ReadModelReader(client, partitions=settings.topics.partitions)
    hub = FeedHub(
        reader,
        redis_clients.pubsub_client(settings.redis),
        max_rate=settings.query.max_updates_per_second,
    )
    async with dynamodb.client(settings.dynamodb) as ddb:
        table = settings.dynamodb.polls_table
        timeout_s = settings.dynamodb.request_timeout_s
        polls = PollCache(
            lambda poll_id: read_poll(ddb, table, poll_id, timeout_s=timeout_s),
            ttl_s=settings.command.poll_cache_ttl_s,
            max_staleness_s=settings.command.poll_max_staleness_s,
        )
        service = QueryService(
            reader,
            hub,
            access=Access.from_settings(settings.auth, settings.security, polls=polls),
            receipts=ReceiptVerifier.from_settings(settings.receipts, settings.security),
            polls=polls,
            partitions=settings.topics.partitions,
            max_wait_s=settings.query.consistency_wait_max_s,
        )
        server = GrpcServer(
            listen=settings.query.listen,
            settings=settings.server,
            tls=settings.tls,
            services=[
                Service.of(SERVICE_DESCRIPTOR, service, preserialized=frozenset({"WatchResults"}))
            ],
            on_drain=hub.drain,
            on_stop=hub.close,
        )
        hub.start()
        await server.serve_until_signal()
    await client.aclose()


def main() -> int:
    settings = Settings.from_env()
    runtime.setup("query-svc", settings)
    asyncio.run(serve(settings))
    telemetry.shutdown()
    return 0
