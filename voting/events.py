"""How events travel as Kafka records: protobuf bytes plus two routing headers.

``event-type`` holds the message's full protobuf name and ``schema-version`` its schema
version, so a consumer can route (or dead-letter) a record without parsing it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TypeAlias

from google.protobuf.message import DecodeError, Message

from voting.errors import UndecodableEvent, UnknownEventType
from voting.v1 import events_pb2

Event: TypeAlias = (
    events_pb2.VoteCast
    | events_pb2.VoteAccepted
    | events_pb2.VoteRejected
    | events_pb2.PollCreated
    | events_pb2.PollClosed
)
Headers: TypeAlias = list[tuple[str, str | bytes | None]]
# What confluent-kafka's Message.headers() may return.
RecordHeaders: TypeAlias = (
    Sequence[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None
)

TYPE_HEADER = "event-type"
VERSION_HEADER = "schema-version"

# Bump a version only for a change old readers must not misread; additive protobuf
# changes keep it.
SCHEMA_VERSIONS: dict[type[Message], int] = {
    events_pb2.VoteCast: 1,
    events_pb2.VoteAccepted: 1,
    events_pb2.VoteRejected: 1,
    events_pb2.PollCreated: 1,
    events_pb2.PollClosed: 1,
}
_BY_NAME: dict[bytes, tuple[type[Message], bytes]] = {
    cls.DESCRIPTOR.full_name.encode(): (cls, str(version).encode())
    for cls, version in SCHEMA_VERSIONS.items()
}
_HEADERS: dict[type[Message], Headers] = {
    cls: [(TYPE_HEADER, name), (VERSION_HEADER, version)]
    for name, (cls, version) in _BY_NAME.items()
}


def headers_for(event_type: type[Message]) -> Headers:
    """The routing headers of an event type (a fresh list: callers may append)."""
    return list(_HEADERS[event_type])


def encode(event: Event) -> tuple[bytes, Headers]:
    return event.SerializeToString(), headers_for(type(event))


def header_items(headers: RecordHeaders) -> list[tuple[str, bytes]]:
    """A record's headers as (name, bytes) pairs, whatever shape the client gave them in."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k, v.encode() if isinstance(v, str) else (v or b"")) for k, v in items]


def event_type_of(headers: RecordHeaders) -> type[Message]:
    """The event class a record holds, from its headers; raises UnknownEventType."""
    name = version = None
    for key, value in header_items(headers):
        if key == TYPE_HEADER:
            name = value
        elif key == VERSION_HEADER:
            version = value
    known = _BY_NAME.get(name or b"")
    if known is None:
        raise UnknownEventType(f"unknown event type {name!r}")
    if version != known[1]:
        raise UnknownEventType(f"{name!r} schema version {version!r} is not {known[1]!r}")
    return known[0]


def decode(value: bytes | None, headers: RecordHeaders) -> Event:
    cls = event_type_of(headers)
    event = cls()
    try:
        event.ParseFromString(value or b"")
    except DecodeError as exc:
        raise UndecodableEvent(f"{cls.DESCRIPTOR.full_name}: {exc}") from exc
    return event  # type: ignore[return-value]


def new_event_id() -> str:
    return str(uuid.uuid4())


def now_ns() -> int:
    return time.time_ns()
