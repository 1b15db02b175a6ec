"""The projector process: ``voting projector``."""

from __future__ import annotations

import asyncio
import os
import socket

from projector.projector import Projector
from projector.store import ReadModelWriter
from voting import logs
from voting import redis as redis_clients
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.readmodel import ACTIVE_KEY, DEFAULT_NAMESPACE, Keys
from voting.server import GrpcServer, wait_for_stop_signal


async def active_namespace(client: object) -> str:
    raw = await client.get(ACTIVE_KEY)  # type: ignore[attr-defined]
    return raw.decode() if raw else DEFAULT_NAMESPACE


async def run(settings: Settings) -> None:
    health = GrpcServer(listen=settings.projector.health_listen, settings=settings.server)
    kafka = KafkaClients(settings.kafka, settings.topics)
    log_id = kafka.log_incarnation([settings.topics.vote_results, settings.topics.polls])
    client = redis_clients.client(settings.redis)
    namespace = DEFAULT_NAMESPACE
    while True:
        try:
            namespace = await active_namespace(client)
            break
        except OSError:
            await asyncio.sleep(1.0)
        except Exception:
            await asyncio.sleep(1.0)
    writer = ReadModelWriter(
        client, Keys(namespace), log_id=log_id, status_ttl_s=settings.projector.vote_status_ttl_s
    )
    projector = Projector(settings, writer, instance_id=f"{socket.gethostname()}-{os.getpid()}")
    stop = asyncio.Event()
    await health.start()
    loop_task = asyncio.create_task(projector.run(stop))
    stopper = asyncio.create_task(wait_for_stop_signal())
    await asyncio.wait({loop_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await health.set_serving(False)
    await loop_task
    stopper.cancel()
    await health.stop()
    await client.aclose()


def main() -> int:
    settings = Settings.from_env()
    logs.configure(
        "projector", level=settings.telemetry.log_level, faults=settings.telemetry.faults
    )
    asyncio.run(run(settings))
    return 0
