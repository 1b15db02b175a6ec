import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from voting.v1 import consistency_pb2 as _consistency_pb2
from voting.v1 import poll_pb2 as _poll_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OptionCount(_message.Message):
    __slots__ = ("option_id", "votes")
    OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    option_id: str
    votes: int
    def __init__(self, option_id: _Optional[str] = ..., votes: _Optional[int] = ...) -> None: ...

class Results(_message.Message):
    __slots__ = ("poll_id", "counts", "total", "version", "watermark", "staleness", "updated_at", "final", "status", "recount")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    STALENESS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECOUNT_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    counts: _containers.RepeatedCompositeFieldContainer[OptionCount]
    total: int
    version: int
    watermark: _containers.RepeatedCompositeFieldContainer[_consistency_pb2.PartitionOffset]
    staleness: _duration_pb2.Duration
    updated_at: _timestamp_pb2.Timestamp
    final: bool
    status: _poll_pb2.PollStatus
    recount: RecountReport
    def __init__(self, poll_id: _Optional[str] = ..., counts: _Optional[_Iterable[_Union[OptionCount, _Mapping]]] = ..., total: _Optional[int] = ..., version: _Optional[int] = ..., watermark: _Optional[_Iterable[_Union[_consistency_pb2.PartitionOffset, _Mapping]]] = ..., staleness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., final: _Optional[bool] = ..., status: _Optional[_Union[_poll_pb2.PollStatus, str]] = ..., recount: _Optional[_Union[RecountReport, _Mapping]] = ...) -> None: ...

class RecountReport(_message.Message):
    __slots__ = ("live_counts", "live_total", "matched", "recounted_at")
    LIVE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LIVE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    RECOUNTED_AT_FIELD_NUMBER: _ClassVar[int]
    live_counts: _containers.RepeatedCompositeFieldContainer[OptionCount]
    live_total: int
    matched: bool
    recounted_at: _timestamp_pb2.Timestamp
    def __init__(self, live_counts: _Optional[_Iterable[_Union[OptionCount, _Mapping]]] = ..., live_total: _Optional[int] = ..., matched: _Optional[bool] = ..., recounted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
