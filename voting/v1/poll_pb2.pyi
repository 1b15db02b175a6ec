import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PollStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLL_STATUS_UNSPECIFIED: _ClassVar[PollStatus]
    POLL_STATUS_SCHEDULED: _ClassVar[PollStatus]
    POLL_STATUS_OPEN: _ClassVar[PollStatus]
    POLL_STATUS_CLOSED: _ClassVar[PollStatus]

class Visibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIBILITY_UNSPECIFIED: _ClassVar[Visibility]
    VISIBILITY_PUBLIC: _ClassVar[Visibility]
    VISIBILITY_PRIVATE: _ClassVar[Visibility]
POLL_STATUS_UNSPECIFIED: PollStatus
POLL_STATUS_SCHEDULED: PollStatus
POLL_STATUS_OPEN: PollStatus
POLL_STATUS_CLOSED: PollStatus
VISIBILITY_UNSPECIFIED: Visibility
VISIBILITY_PUBLIC: Visibility
VISIBILITY_PRIVATE: Visibility

class PollOption(_message.Message):
    __slots__ = ("option_id", "label")
    OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    option_id: str
    label: str
    def __init__(self, option_id: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class Poll(_message.Message):
    __slots__ = ("poll_id", "title", "options", "status", "opens_at", "closes_at", "created_at", "closed_at", "visibility")
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENS_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    poll_id: str
    title: str
    options: _containers.RepeatedCompositeFieldContainer[PollOption]
    status: PollStatus
    opens_at: _timestamp_pb2.Timestamp
    closes_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    visibility: Visibility
    def __init__(self, poll_id: _Optional[str] = ..., title: _Optional[str] = ..., options: _Optional[_Iterable[_Union[PollOption, _Mapping]]] = ..., status: _Optional[_Union[PollStatus, str]] = ..., opens_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closes_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., visibility: _Optional[_Union[Visibility, str]] = ...) -> None: ...
