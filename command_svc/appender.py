"""Appends the command side's events to Kafka, and says where they landed.

Votes are keyed by poll and voter key (all votes of one voter in one poll share a
partition and so are decided in order). A close appends one PollClosed marker to EVERY
partition of ``votes``: the poll's close point in each partition (see events.proto).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.trace import SpanKind

from command_svc.metrics import VOTES_APPENDED
from voting import events, telemetry
from voting.config import TopicSettings
from voting.errors import DeliveryError
from voting.kafka import AsyncProducer, Delivered, Outgoing
from voting.v1 import events_pb2

log = logging.getLogger(__name__)
_VOTE_HEADERS = events.headers_for(events_pb2.VoteCast)


class EventAppender:
    def __init__(self, producer: AsyncProducer, topics: TopicSettings) -> None:
        self._producer = producer
        self._topics = topics

    async def append_votes(
        self, votes: Sequence[events_pb2.VoteCast]
    ) -> list[Delivered | DeliveryError]:
        topic = self._topics.votes
        with telemetry.tracer().start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.batch.message_count": len(votes)},
        ):
            # Sampled calls carry their trace to the worker and the projector.
            headers = _VOTE_HEADERS + telemetry.inject_current()
            records = [
                Outgoing(
                    topic,
                    vote.SerializeToString(),
                    key=f"{vote.poll_id}/{vote.voter_key}".encode(),
                    headers=headers,
                )
                for vote in votes
            ]
            results = await self._producer.send_batch(records)
            log.debug("votes appended", extra={"votes": len(votes), "topic": topic})
        VOTES_APPENDED.inc(sum(1 for r in results if not isinstance(r, DeliveryError)))
        return results

    async def append_poll_created(self, event: events_pb2.PollCreated) -> None:
        value, headers = events.encode(event)
        await self._producer.send(
            Outgoing(self._topics.polls, value, key=event.poll.poll_id.encode(), headers=headers)
        )

    async def append_poll_closed(self, event: events_pb2.PollClosed) -> None:
        """The lifecycle event on ``polls`` and a close marker on each partition of ``votes``."""
        partitions = self._topics.partitions
        lifecycle = events_pb2.PollClosed()
        lifecycle.CopyFrom(event)
        lifecycle.partition = -1
        lifecycle.partition_count = partitions
        value, headers = events.encode(lifecycle)
        records = [Outgoing(self._topics.polls, value, key=event.poll_id.encode(), headers=headers)]
        for partition in range(partitions):
            marker = events_pb2.PollClosed()
            marker.CopyFrom(lifecycle)
            marker.partition = partition
            value, headers = events.encode(marker)
            records.append(
                Outgoing(
                    self._topics.votes,
                    value,
                    key=event.poll_id.encode(),
                    headers=headers,
                    partition=partition,
                )
            )
        for result in await self._producer.send_batch(records):
            if isinstance(result, DeliveryError):
                raise result
