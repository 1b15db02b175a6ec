"""The projector process: ``voting projector``. Also serves AdminService (recounts)."""

from __future__ import annotations

import asyncio
import os
import socket

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from projector.admin import AdminService
from projector.projector import Projector
from projector.recount import Recount
from projector.recount_source import DynamoDBRecountSource
from projector.store import ReadModelWriter
from voting import dynamodb, runtime, telemetry
from voting import redis as redis_clients
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.lag import LagProbe
from voting.readmodel import ACTIVE_KEY, DEFAULT_NAMESPACE, Keys
from voting.server import GrpcServer, Service
from voting.tokens import AdminGate
from voting.v1 import admin_service_pb2

SERVICE_DESCRIPTOR = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]


async def active_namespace(client: aioredis.Redis) -> str:
    """The live read-model namespace; waits for Redis if it is not up yet."""
    while True:
        try:
            raw = await client.get(ACTIVE_KEY)
        except (RedisError, OSError):
            await asyncio.sleep(1.0)
            continue
        return redis_clients.text(raw) or DEFAULT_NAMESPACE


async def run(settings: Settings) -> None:
    kafka = KafkaClients(settings.kafka, settings.topics)
    kafka.verify_topics(timeout_s=10, unreachable_ok=True)
    log_id = kafka.log_incarnation([settings.topics.vote_results, settings.topics.polls])
    client = redis_clients.client(settings.redis)
    keys = Keys(await active_namespace(client))
    writer = ReadModelWriter(
        client, keys, log_id=log_id, status_ttl_s=settings.projector.vote_status_ttl_s
    )
    async with dynamodb.client(settings.dynamodb) as ddb:
        recount = Recount(DynamoDBRecountSource(ddb, settings.dynamodb), writer)
        admin = AdminService(recount, AdminGate.from_settings(settings.auth, settings.security))
        server = GrpcServer(
            listen=settings.projector.listen,
            settings=settings.server,
            tls=settings.tls,
            services=[Service.of(SERVICE_DESCRIPTOR, admin)],
        )
        projector = Projector(
            settings, writer, instance_id=f"{socket.gethostname()}-{os.getpid()}", recount=recount
        )
        lag = LagProbe(
            kafka,
            group=settings.projector.group_id,
            topic=settings.topics.vote_results,
            positions=projector.positions,
        ).start()
        await server.serve_while(projector.run)
        lag.stop()
    await client.aclose()


def main() -> int:
    settings = Settings.from_env()
    runtime.setup("projector", settings)
    asyncio.run(run(settings))
    telemetry.shutdown()
    return 0
