"""``voting projection rebuild``: a fresh read model, built beside the live one, then swapped in.

1. Replay the decision log (``vote-results``) and the poll events (``polls``) from the
   beginning into a new namespace, with the projector's own fold and guarded writes, until
   every partition is at its end.
2. Finalize closed polls in the new namespace by recounting them from DynamoDB (the
   source of truth): FINAL results are rebuilt from the ``votes`` table, so polls whose
   votes have left the log are still right.
3. Switch: ``readmodel:active`` names the new namespace and a notification tells every
   query process at once. The live projector notices, re-reads its positions from the new
   namespace (where the rebuild left them) and carries on from there: nothing is skipped,
   nothing is applied twice (the guards came along).

Queries never stop: until the switch they read the old namespace, after it the new one.
The old namespace is left in place for inspection or rollback (``--drop-previous``
deletes it after the switch).

Open polls are rebuilt from the log alone, so the log's retention must cover an open
poll's whole life (it does locally: the local broker keeps everything; on Kafka set the
topics' retention longer than the longest poll).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from projector.projection import fold
from projector.recount import Recount
from projector.recount_source import DynamoDBRecountSource
from projector.store import ReadModelWriter
from voting import dynamodb
from voting.config import Settings
from voting.kafka import KafkaClients, take_batch
from voting.readmodel import ACTIVE_KEY, CHANGES_CHANNEL, DEFAULT_NAMESPACE, SWITCH_MESSAGE, Keys
from voting.redis import text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildOutcome:
    previous: str
    namespace: str
    records: int
    polls: int
    finalized: int
    seconds: float


async def rebuild(
    settings: Settings, client: aioredis.Redis, *, drop_previous: bool = False
) -> RebuildOutcome:
    started = time.monotonic()
    kafka = KafkaClients(settings.kafka, settings.topics)
    topics = settings.topics
    log_id = kafka.log_incarnation([topics.vote_results, topics.polls])
    previous = text(await client.get(ACTIVE_KEY)) or DEFAULT_NAMESPACE
    keys = Keys(f"{DEFAULT_NAMESPACE}-{time.strftime('%Y%m%d%H%M%S')}")
    writer = ReadModelWriter(
        client, keys, log_id=log_id, status_ttl_s=settings.projector.vote_status_ttl_s, notify=False
    )
    await writer.claim_log()
    records = await asyncio.to_thread(
        _replay_blocking, kafka, settings, writer, asyncio.get_running_loop()
    )
    finalized = 0
    async with dynamodb.client(settings.dynamodb) as ddb:
        recount = Recount(DynamoDBRecountSource(ddb, settings.dynamodb), writer)
        for poll_id in await writer.closing():
            if await recount.drained(poll_id):
                await recount.run(poll_id, drain_timeout_s=0)
                finalized += 1
    polls = int(await client.zcard(keys.polls))
    await writer.bump_all()
    await client.set(ACTIVE_KEY, keys.namespace)
    await client.publish(CHANGES_CHANNEL, SWITCH_MESSAGE)
    log.info("read model switched", extra={"from": previous, "to": keys.namespace})
    if drop_previous:
        await drop_namespace(client, previous)
    return RebuildOutcome(
        previous, keys.namespace, records, polls, finalized, time.monotonic() - started
    )


def _replay_blocking(
    kafka: KafkaClients,
    settings: Settings,
    writer: ReadModelWriter,
    loop: asyncio.AbstractEventLoop,
) -> int:
    """Reads both topics from the start to their end, applying as the projector does."""
    topics = settings.topics
    partitions = [(topics.vote_results, p) for p in range(topics.partitions)]
    partitions += [(topics.polls, p) for p in range(topics.polls_partitions)]
    reader = kafka.reader(client_id=f"rebuild-{int(time.time())}")
    reader.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in partitions])
    guards: dict[tuple[str, int], int] = {}
    positions: dict[str, int] = {}
    at_end: set[tuple[str, int]] = set()
    applied = 0
    try:
        while len(at_end) < len(partitions):
            batch = []
            for msg in take_batch(reader, max_records=settings.projector.batch_max, wait_s=1.0):
                err = msg.error()
                key = (msg.topic() or "", msg.partition() or 0)
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(key)
                    continue
                at_end.discard(key)
                batch.append(msg)
            if batch:
                update = fold(batch, guards, polls_topic=topics.polls)
                asyncio.run_coroutine_threadsafe(
                    writer.apply(update, guards, positions), loop
                ).result()
                applied += update.records
    finally:
        reader.close()
    return applied


async def drop_namespace(client: aioredis.Redis, namespace: str) -> int:
    dropped = 0
    async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        dropped += int(await client.delete(key))
    return dropped
