"""Events travel as protobuf bytes plus event-type and schema-version headers."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from voting import events
from voting.errors import EventError, UndecodableEvent, UnknownEventType
from voting.v1 import consistency_pb2, events_pb2, poll_pb2, vote_pb2

pytestmark = pytest.mark.unit

_AT = Timestamp(seconds=1_700_000_000, nanos=123_000_000)
_SOURCE = consistency_pb2.PartitionOffset(partition=3, offset=41)

SAMPLES: list[events.Event] = [
    events_pb2.VoteCast(
        event_id="e-1",
        occurred_at=_AT,
        vote_id="0b7c3f4e-0000-8000-8000-000000000001",
        poll_id="best-fruit",
        voter_key="0123456789abcdef0123456789abcdef",
        option_id="apple",
        request_id="req-1",
        ledger_shard=5,
    ),
    events_pb2.VoteAccepted(
        event_id="e-2",
        occurred_at=_AT,
        vote_id="v-1",
        poll_id="best-fruit",
        option_id="pear",
        source=_SOURCE,
        cast_at=_AT,
    ),
    events_pb2.VoteRejected(
        event_id="e-3",
        occurred_at=_AT,
        vote_id="v-2",
        poll_id="best-fruit",
        reason=vote_pb2.REJECT_REASON_DUPLICATE,
        accepted_vote_id="v-1",
        source=_SOURCE,
        cast_at=_AT,
    ),
    events_pb2.PollCreated(
        event_id="e-4",
        occurred_at=_AT,
        poll=poll_pb2.Poll(
            poll_id="best-fruit",
            title="Best fruit? 🍐",
            options=[
                poll_pb2.PollOption(option_id="apple", label="Apple"),
                poll_pb2.PollOption(option_id="pear", label="Pear"),
            ],
            status=poll_pb2.POLL_STATUS_OPEN,
            created_at=_AT,
        ),
        request_id="req-2",
        ledger_shards=16,
    ),
    events_pb2.PollClosed(
        event_id="e-5",
        occurred_at=_AT,
        poll_id="best-fruit",
        request_id="req-3",
        partition=2,
        partition_count=8,
        source=_SOURCE,
    ),
]


def _valid_headers(cls: type[Message]) -> list[tuple[str, bytes]]:
    return events.header_items(events.headers_for(cls))


def test_the_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(events.SCHEMA_VERSIONS)
    assert len(SAMPLES) == len(events.SCHEMA_VERSIONS)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_encode_then_decode_gives_the_same_event(event: events.Event) -> None:
    value, headers = events.encode(event)

    decoded = events.decode(value, headers)

    assert type(decoded) is type(event)
    assert decoded == event
    assert decoded.event_id == event.event_id


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_headers_name_the_type_and_its_schema_version(event: events.Event) -> None:
    _, headers = events.encode(event)

    assert dict(events.header_items(headers)) == {
        events.TYPE_HEADER: type(event).DESCRIPTOR.full_name.encode(),
        events.VERSION_HEADER: str(events.SCHEMA_VERSIONS[type(event)]).encode(),
    }
    assert events.event_type_of(headers) is type(event)


def test_headers_for_returns_a_fresh_list() -> None:
    first = events.headers_for(events_pb2.VoteCast)
    first.append(("traceparent", b"x"))

    assert events.headers_for(events_pb2.VoteCast) == first[:2]


def test_decode_ignores_other_headers_and_their_order() -> None:
    event = SAMPLES[1]
    value, headers = events.encode(event)
    shuffled = [("traceparent", b"00-abc"), headers[1], ("other", None), headers[0]]

    assert events.decode(value, shuffled) == event


def test_an_empty_value_decodes_as_the_empty_event() -> None:
    headers = events.headers_for(events_pb2.PollClosed)

    assert events.decode(None, headers) == events_pb2.PollClosed()
    assert events.decode(b"", headers) == events_pb2.PollClosed()


@pytest.mark.parametrize(
    "headers",
    [
        [(events.TYPE_HEADER, b"voting.v1.VoteExploded"), (events.VERSION_HEADER, b"1")],
        [(events.TYPE_HEADER, b"VoteCast"), (events.VERSION_HEADER, b"1")],
        [(events.TYPE_HEADER, b""), (events.VERSION_HEADER, b"1")],
        [(events.TYPE_HEADER, None), (events.VERSION_HEADER, b"1")],
        [(events.VERSION_HEADER, b"1")],
        [("Event-Type", b"voting.v1.VoteCast"), (events.VERSION_HEADER, b"1")],
        [],
        None,
    ],
    ids=["unknown", "short-name", "empty", "none", "missing", "wrong-case", "no-headers", "null"],
)
def test_an_unknown_or_missing_event_type_is_refused(
    headers: list[tuple[str, bytes | None]] | None,
) -> None:
    value, _ = events.encode(SAMPLES[0])

    with pytest.raises(UnknownEventType):
        events.decode(value, headers)
    with pytest.raises(UnknownEventType):
        events.event_type_of(headers)


@pytest.mark.parametrize("version", [b"2", b"0", b"", b"1.0", b" 1", None])
def test_a_wrong_schema_version_is_refused(version: bytes | None) -> None:
    value, _ = events.encode(SAMPLES[0])
    headers: list[tuple[str, str | bytes | None]] = [
        (events.TYPE_HEADER, b"voting.v1.VoteCast"),
        (events.VERSION_HEADER, version),
    ]

    with pytest.raises(UnknownEventType, match="schema version"):
        events.decode(value, headers)


def test_a_missing_schema_version_is_refused() -> None:
    value, _ = events.encode(SAMPLES[0])

    with pytest.raises(UnknownEventType):
        events.decode(value, [(events.TYPE_HEADER, b"voting.v1.VoteCast")])


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xff\xfe"],
    ids=["bad-tag", "truncated", "bad-utf8"],
)
@pytest.mark.parametrize("cls", list(events.SCHEMA_VERSIONS), ids=lambda c: c.__name__)
def test_garbage_with_a_valid_header_is_undecodable(garbage: bytes, cls: type[Message]) -> None:
    with pytest.raises(UndecodableEvent, match=cls.DESCRIPTOR.full_name):
        events.decode(garbage, events.headers_for(cls))


@settings(max_examples=200, deadline=None)
@given(
    cls=st.sampled_from(list(events.SCHEMA_VERSIONS)),
    value=st.binary(max_size=64),
)
def test_arbitrary_bytes_decode_to_the_named_type_or_raise_undecodable(
    cls: type[Message], value: bytes
) -> None:
    try:
        decoded = events.decode(value, events.headers_for(cls))
    except UndecodableEvent:
        return
    assert type(decoded) is cls


def test_event_errors_share_a_root() -> None:
    assert issubclass(UnknownEventType, EventError)
    assert issubclass(UndecodableEvent, EventError)


def test_header_items_accepts_a_list_of_tuples() -> None:
    headers: list[tuple[str, str | bytes | None]] = [("a", b"1"), ("b", "two"), ("c", None)]

    assert events.header_items(headers) == [("a", b"1"), ("b", b"two"), ("c", b"")]


def test_header_items_keeps_repeated_names_in_order() -> None:
    headers: list[tuple[str, str | bytes | None]] = [("a", b"1"), ("a", b"2")]

    assert events.header_items(headers) == [("a", b"1"), ("a", b"2")]


def test_header_items_accepts_a_dict() -> None:
    headers: dict[str, str | bytes | None] = {"a": b"1", "b": "zwei", "c": None}

    assert events.header_items(headers) == [("a", b"1"), ("b", b"zwei"), ("c", b"")]


@pytest.mark.parametrize("empty", [None, [], {}])
def test_header_items_of_nothing_is_empty(
    empty: list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None,
) -> None:
    assert events.header_items(empty) == []


def test_header_items_encodes_str_values_as_utf8() -> None:
    assert events.header_items([("name", "é")]) == [("name", "é".encode())]


def test_str_headers_route_like_bytes_headers() -> None:
    value, _ = events.encode(SAMPLES[2])
    as_dict: dict[str, str | bytes | None] = {
        events.TYPE_HEADER: "voting.v1.VoteRejected",
        events.VERSION_HEADER: "1",
    }

    assert events.decode(value, as_dict) == SAMPLES[2]


def test_new_event_ids_are_unique() -> None:
    assert len({events.new_event_id() for _ in range(100)}) == 100
