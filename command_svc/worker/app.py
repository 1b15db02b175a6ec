"""The dedup worker process: ``voting worker``."""

from __future__ import annotations

import asyncio
import os
import socket

from command_svc.worker.ledger import VoteLedger
from command_svc.worker.worker import DedupWorker
from voting import dynamodb, logs
from voting.config import Settings
from voting.server import GrpcServer, wait_for_stop_signal


async def run(settings: Settings) -> None:
    health = GrpcServer(listen=settings.worker.health_listen, settings=settings.server)
    async with dynamodb.client(settings.dynamodb) as ddb:
        ledger = VoteLedger(
            ddb,
            settings.dynamodb.votes_table,
            concurrency=settings.worker.dynamodb_concurrency,
            mode=settings.worker.ledger_writes,
        )
        worker = DedupWorker(settings, ledger, instance_id=f"{socket.gethostname()}-{os.getpid()}")
        stop = asyncio.Event()
        await health.start()
        loop_task = asyncio.create_task(worker.run(stop))
        stopper = asyncio.create_task(wait_for_stop_signal())
        await asyncio.wait({loop_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await health.set_serving(False)
        await loop_task  # finishes the batch in hand, commits it, leaves the group
        stopper.cancel()
        await health.stop()


def main() -> int:
    settings = Settings.from_env()
    logs.configure("worker", level=settings.telemetry.log_level, faults=settings.telemetry.faults)
    asyncio.run(run(settings))
    return 0
