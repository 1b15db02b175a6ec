"""The dedup worker process: ``voting worker``."""

from __future__ import annotations

import asyncio
import os
import socket

from command_svc.worker.checkpoints import DynamoDBCheckpoints
from command_svc.worker.ledger import DynamoDBVoteLedger
from command_svc.worker.worker import DedupWorker
from voting import dynamodb, runtime, telemetry
from voting.config import Settings
from voting.kafka import KafkaClients
from voting.lag import LagProbe
from voting.server import GrpcServer


async def run(settings: Settings) -> None:
    kafka = KafkaClients(settings.kafka, settings.topics)
    await asyncio.to_thread(lambda: kafka.verify_topics(timeout_s=10, unreachable_ok=True))
    changelog = settings.topics.dedup_changelog
    incarnation = await asyncio.to_thread(kafka.log_incarnation, [changelog])
    health = GrpcServer(
        listen=settings.worker.health_listen, settings=settings.server, tls=settings.tls
    )
    async with dynamodb.client(settings.dynamodb) as ddb:
        instance_id = f"{socket.gethostname()}-{os.getpid()}"
        ledger = DynamoDBVoteLedger(
            ddb,
            settings.dynamodb.votes_table,
            concurrency=settings.worker.dynamodb_concurrency,
            mode=settings.worker.ledger_writes,
            barrier=(settings.dynamodb.checkpoints_table, f"ledger-barrier/{instance_id}")
            if settings.worker.ledger_barrier
            else None,
        )
        checkpoints = DynamoDBCheckpoints(
            ddb,
            settings.dynamodb.checkpoints_table,
            prefix=f"{settings.worker.group_id}/{changelog}/{incarnation}",
        )
        worker = DedupWorker(settings, ledger, checkpoints, instance_id=instance_id)
        lag = LagProbe(
            kafka,
            group=settings.worker.group_id,
            topic=settings.topics.votes,
            positions=worker.positions,
        ).start()
        await health.serve_while(worker.run)  # on SIGTERM: commits its batch, leaves the group
        lag.stop()


def main() -> int:
    settings = Settings.from_env()
    runtime.setup("worker", settings)
    asyncio.run(run(settings))
    telemetry.shutdown()
    return 0
