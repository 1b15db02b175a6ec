"""The query service process: ``voting query-svc``."""

from __future__ import annotations

import asyncio

from query_svc.feeds import FeedHub
from query_svc.read_model import ReadModelReader
from query_svc.service import SERVICE_NAME, QueryService, handler
from voting import redis as redis_clients
from voting import runtime, telemetry
from voting.config import Settings
from voting.server import GrpcServer, Service


async def serve(settings: Settings) -> None:
    client = redis_clients.client(settings.redis)
    reader = ReadModelReader(client, partitions=settings.topics.partitions)
    hub = FeedHub(
        reader,
        redis_clients.pubsub_client(settings.redis),
        max_rate=settings.query.max_updates_per_second,
    )
    service = QueryService(reader, hub)
    generic = handler(service)
    server = GrpcServer(
        listen=settings.query.listen,
        settings=settings.server,
        services=[Service(SERVICE_NAME, lambda s: s.add_generic_rpc_handlers((generic,)))],
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
