"""Records as a consumer hands them over, built in memory: for unit tests of what folds
or decides them (nothing here stands in for a broker: no produce, no fetch)."""

from __future__ import annotations

from typing import cast

from confluent_kafka import KafkaError, Message

from voting import events

RESULTS = "vote-results"


class FakeMessage:
    """Just enough of confluent_kafka.Message for fold()."""

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None,
        headers: events.RecordHeaders,
        *,
        key: bytes | None = None,
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._value = value
        self._headers = headers
        self._key = key

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> events.RecordHeaders:
        return self._headers

    def error(self) -> KafkaError | None:
        return None


class Log:
    """Records appended to topic partitions at consecutive offsets."""

    def __init__(self, *, start: int = 0) -> None:
        self._start = start  # the first offset of every partition
        self._next: dict[tuple[str, int], int] = {}
        self.records: list[Message] = []

    def append(self, event: events.Event, *, topic: str = RESULTS, partition: int = 0) -> Message:
        value, headers = events.encode(event)
        return self.raw(value, headers, topic=topic, partition=partition)

    def raw(
        self,
        value: bytes | None,
        headers: events.RecordHeaders,
        *,
        topic: str = RESULTS,
        partition: int = 0,
    ) -> Message:
        offset = self._next.get((topic, partition), self._start)
        self._next[(topic, partition)] = offset + 1
        msg = cast(Message, FakeMessage(topic, partition, offset, value, headers))
        self.records.append(msg)
        return msg
