"""The dedup worker process: ``voting worker``."""

from __future__ import annotations

import asyncio
import os
import socket

from command_svc.worker.ledger import VoteLedger
from command_svc.worker.worker import DedupWorker
from voting import dynamodb, runtime, telemetry
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.lag import LagProbe
from voting.server import GrpcServer, wait_for_stop_signal


async def run(settings: Settings) -> None:
    health = GrpcServer(
        listen=settings.worker.health_listen, settings=settings.server, tls=settings.tls
    )
    async with dynamodb.client(settings.dynamodb) as ddb:
        ledger = VoteLedger(
            ddb,
            settings.dynamodb.votes_table,
            concurrency=settings.worker.dynamodb_concurrency,
            mode=settings.worker.ledger_writes,
        )
        worker = DedupWorker(settings, ledger, instance_id=f"{socket.gethostname()}-{os.getpid()}")
        lag = LagProbe(
            KafkaClients(settings.kafka, settings.topics),
            group=settings.worker.group_id,
            topic=settings.topics.votes,
            positions=worker.positions,
        ).start()
        stop = asyncio.Event()
        await health.start()
        loop_task = asyncio.create_task(worker.run(stop))
        stopper = asyncio.create_task(wait_for_stop_signal())
        await asyncio.wait({loop_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await health.set_serving(False)
        await loop_task  # finishes the batch in hand, commits it, leaves the group
        stopper.cancel()
        lag.stop()
        await health.stop()


def main() -> int:
    settings = Settings.from_env()
    runtime.setup("worker", settings)
    asyncio.run(run(settings))
    telemetry.shutdown()
    return 0
