import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from voting.v1 import consistency_pb2 as _consistency_pb2
from voting.v1 import poll_pb2 as _poll_pb2
from voting.v1 import vote_pb2 as _vote_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreatePollRequest(_message.Message):
    __slots__ = ("request_id", "poll_id", "title", "options", "opens_at", "closes_at", "visibility")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    OPENS_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    poll_id: str
    title: str
    options: _containers.RepeatedCompositeFieldContainer[_poll_pb2.PollOption]
    opens_at: _timestamp_pb2.Timestamp
    closes_at: _timestamp_pb2.Timestamp
    visibility: _poll_pb2.Visibility
    def __init__(self, request_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., title: _Optional[str] = ..., options: _Optional[_Iterable[_Union[_poll_pb2.PollOption, _Mapping]]] = ..., opens_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closes_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., visibility: _Optional[_Union[_poll_pb2.Visibility, str]] = ...) -> None: ...

class CreatePollResponse(_message.Message):
    __slots__ = ("poll_id", "created_at")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, poll_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ClosePollRequest(_message.Message):
    __slots__ = ("request_id", "poll_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    poll_id: str
    def __init__(self, request_id: _Optional[str] = ..., poll_id: _Optional[str] = ...) -> None: ...

class ClosePollResponse(_message.Message):
    __slots__ = ("poll_id", "closed_at")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    closed_at: _timestamp_pb2.Timestamp
    def __init__(self, poll_id: _Optional[str] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CastVoteRequest(_message.Message):
    __slots__ = ("request_id", "poll_id", "voter_id", "option_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    VOTER_ID_FIELD_NUMBER: _ClassVar[int]
    OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    poll_id: str
    voter_id: str
    option_id: str
    def __init__(self, request_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., voter_id: _Optional[str] = ..., option_id: _Optional[str] = ...) -> None: ...

class CastVoteResponse(_message.Message):
    __slots__ = ("vote_id", "consistency_token", "received_at", "receipt")
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    vote_id: str
    consistency_token: _consistency_pb2.ConsistencyToken
    received_at: _timestamp_pb2.Timestamp
    receipt: _vote_pb2.VoteReceipt
    def __init__(self, vote_id: _Optional[str] = ..., consistency_token: _Optional[_Union[_consistency_pb2.ConsistencyToken, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., receipt: _Optional[_Union[_vote_pb2.VoteReceipt, _Mapping]] = ...) -> None: ...

class CastVotesRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[CastVoteRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[CastVoteRequest, _Mapping]]] = ...) -> None: ...

class CastVoteResult(_message.Message):
    __slots__ = ("status", "response")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    response: CastVoteResponse
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., response: _Optional[_Union[CastVoteResponse, _Mapping]] = ...) -> None: ...

class CastVotesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CastVoteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[CastVoteResult, _Mapping]]] = ...) -> None: ...
