"""Consumer lag per partition that is right even where the broker's end offsets are not.

The local broker answers "latest offset" with the start of the partition's last batch
plus one, not its end. So the probe asks for that offset, reads from just before it to
the end of the partition (at most one batch), and takes the end from the
``_PARTITION_EOF`` event, whose offset is the partition's true end. On Kafka the same
read is one empty fetch. Lag = true end - the consumer's own position.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from prometheus_client import Gauge

from voting.kafka import KafkaClients, take_batch

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "voting_consumer_lag_records",
    "Records between a consumer's position and the true end of the partition",
    ["group", "topic", "partition"],
)


def true_end_offsets(kafka: KafkaClients, topic: str, partitions: list[int]) -> dict[int, int]:
    reader = kafka.reader(client_id=f"lag-probe-{topic}")
    try:
        starts = []
        for partition in partitions:
            low, high = reader.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=5, cached=False
            )
            starts.append(TopicPartition(topic, partition, max(high - 1, low, 0)))
        reader.assign(starts)
        ends: dict[int, int] = {}
        deadline = time.monotonic() + 10
        while len(ends) < len(partitions) and time.monotonic() < deadline:
            for msg in take_batch(reader, max_records=10_000, wait_s=0.5):
                err = msg.error()
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    ends[msg.partition() or 0] = msg.offset() or 0
        return ends
    finally:
        reader.close()


class LagProbe:
    """Publishes a group's lag per partition every ``interval_s``, from a daemon thread."""

    def __init__(
        self,
        kafka: KafkaClients,
        *,
        group: str,
        topic: str,
        positions: Callable[[], dict[int, int]],
        interval_s: float = 5.0,
    ) -> None:
        self._kafka = kafka
        self._group = group
        self._topic = topic
        self._positions = positions
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lag-{topic}", daemon=True)

    def start(self) -> LagProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            positions = dict(self._positions())
            if not positions:
                continue
            try:
                ends = true_end_offsets(self._kafka, self._topic, sorted(positions))
            except KafkaException as exc:
                log.warning("lag probe failed: %s", exc)
                continue
            for partition, position in positions.items():
                if partition in ends:
                    CONSUMER_LAG.labels(self._group, self._topic, str(partition)).set(
                        max(0, ends[partition] - position)
                    )
