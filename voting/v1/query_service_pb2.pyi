import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from voting.v1 import consistency_pb2 as _consistency_pb2
from voting.v1 import poll_pb2 as _poll_pb2
from voting.v1 import results_pb2 as _results_pb2
from voting.v1 import vote_pb2 as _vote_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetPollRequest(_message.Message):
    __slots__ = ("poll_id",)
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    def __init__(self, poll_id: _Optional[str] = ...) -> None: ...

class GetPollResponse(_message.Message):
    __slots__ = ("poll",)
    POLL_FIELD_NUMBER: _ClassVar[int]
    poll: _poll_pb2.Poll
    def __init__(self, poll: _Optional[_Union[_poll_pb2.Poll, _Mapping]] = ...) -> None: ...

class ListPollsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPollsResponse(_message.Message):
    __slots__ = ("polls", "next_page_token")
    POLLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    polls: _containers.RepeatedCompositeFieldContainer[_poll_pb2.Poll]
    next_page_token: str
    def __init__(self, polls: _Optional[_Iterable[_Union[_poll_pb2.Poll, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("poll_id", "consistency_token")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    consistency_token: _consistency_pb2.ConsistencyToken
    def __init__(self, poll_id: _Optional[str] = ..., consistency_token: _Optional[_Union[_consistency_pb2.ConsistencyToken, _Mapping]] = ...) -> None: ...

class GetResultsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _results_pb2.Results
    def __init__(self, results: _Optional[_Union[_results_pb2.Results, _Mapping]] = ...) -> None: ...

class WatchResultsRequest(_message.Message):
    __slots__ = ("poll_id", "after_version")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    after_version: int
    def __init__(self, poll_id: _Optional[str] = ..., after_version: _Optional[int] = ...) -> None: ...

class WatchResultsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _results_pb2.Results
    def __init__(self, results: _Optional[_Union[_results_pb2.Results, _Mapping]] = ...) -> None: ...

class GetVoteStatusRequest(_message.Message):
    __slots__ = ("poll_id", "vote_id", "consistency_token", "receipt")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    vote_id: str
    consistency_token: _consistency_pb2.ConsistencyToken
    receipt: _vote_pb2.VoteReceipt
    def __init__(self, poll_id: _Optional[str] = ..., vote_id: _Optional[str] = ..., consistency_token: _Optional[_Union[_consistency_pb2.ConsistencyToken, _Mapping]] = ..., receipt: _Optional[_Union[_vote_pb2.VoteReceipt, _Mapping]] = ...) -> None: ...

class GetVoteStatusResponse(_message.Message):
    __slots__ = ("vote_id", "state", "reason", "decided_at", "option_id", "counted_as_cast", "poll_id", "counted_vote_id")
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTED_AS_CAST_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTED_VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    vote_id: str
    state: _vote_pb2.VoteState
    reason: _vote_pb2.RejectReason
    decided_at: _timestamp_pb2.Timestamp
    option_id: str
    counted_as_cast: bool
    poll_id: str
    counted_vote_id: str
    def __init__(self, vote_id: _Optional[str] = ..., state: _Optional[_Union[_vote_pb2.VoteState, str]] = ..., reason: _Optional[_Union[_vote_pb2.RejectReason, str]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., option_id: _Optional[str] = ..., counted_as_cast: _Optional[bool] = ..., poll_id: _Optional[str] = ..., counted_vote_id: _Optional[str] = ...) -> None: ...
