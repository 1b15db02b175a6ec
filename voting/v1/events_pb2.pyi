import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from voting.v1 import consistency_pb2 as _consistency_pb2
from voting.v1 import poll_pb2 as _poll_pb2
from voting.v1 import vote_pb2 as _vote_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoteCast(_message.Message):
    __slots__ = ("event_id", "occurred_at", "vote_id", "poll_id", "voter_key", "option_id", "request_id", "ledger_shard")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    VOTER_KEY_FIELD_NUMBER: _ClassVar[int]
    OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SHARD_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    vote_id: str
    poll_id: str
    voter_key: str
    option_id: str
    request_id: str
    ledger_shard: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., vote_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., voter_key: _Optional[str] = ..., option_id: _Optional[str] = ..., request_id: _Optional[str] = ..., ledger_shard: _Optional[int] = ...) -> None: ...

class VoteAccepted(_message.Message):
    __slots__ = ("event_id", "occurred_at", "vote_id", "poll_id", "option_id", "source", "cast_at", "voter_key")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CAST_AT_FIELD_NUMBER: _ClassVar[int]
    VOTER_KEY_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    vote_id: str
    poll_id: str
    option_id: str
    source: _consistency_pb2.PartitionOffset
    cast_at: _timestamp_pb2.Timestamp
    voter_key: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., vote_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., option_id: _Optional[str] = ..., source: _Optional[_Union[_consistency_pb2.PartitionOffset, _Mapping]] = ..., cast_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., voter_key: _Optional[str] = ...) -> None: ...

class VoteRejected(_message.Message):
    __slots__ = ("event_id", "occurred_at", "vote_id", "poll_id", "reason", "accepted_vote_id", "source", "cast_at", "voter_key")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CAST_AT_FIELD_NUMBER: _ClassVar[int]
    VOTER_KEY_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    vote_id: str
    poll_id: str
    reason: _vote_pb2.RejectReason
    accepted_vote_id: str
    source: _consistency_pb2.PartitionOffset
    cast_at: _timestamp_pb2.Timestamp
    voter_key: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., vote_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., reason: _Optional[_Union[_vote_pb2.RejectReason, str]] = ..., accepted_vote_id: _Optional[str] = ..., source: _Optional[_Union[_consistency_pb2.PartitionOffset, _Mapping]] = ..., cast_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., voter_key: _Optional[str] = ...) -> None: ...

class PollCreated(_message.Message):
    __slots__ = ("event_id", "occurred_at", "poll", "request_id", "ledger_shards")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    POLL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SHARDS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    poll: _poll_pb2.Poll
    request_id: str
    ledger_shards: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., poll: _Optional[_Union[_poll_pb2.Poll, _Mapping]] = ..., request_id: _Optional[str] = ..., ledger_shards: _Optional[int] = ...) -> None: ...

class PollClosed(_message.Message):
    __slots__ = ("event_id", "occurred_at", "poll_id", "request_id", "partition", "partition_count", "source")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    poll_id: str
    request_id: str
    partition: int
    partition_count: int
    source: _consistency_pb2.PartitionOffset
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., poll_id: _Optional[str] = ..., request_id: _Optional[str] = ..., partition: _Optional[int] = ..., partition_count: _Optional[int] = ..., source: _Optional[_Union[_consistency_pb2.PartitionOffset, _Mapping]] = ...) -> None: ...
