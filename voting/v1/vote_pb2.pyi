import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoteState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_STATE_UNSPECIFIED: _ClassVar[VoteState]
    VOTE_STATE_PENDING: _ClassVar[VoteState]
    VOTE_STATE_ACCEPTED: _ClassVar[VoteState]
    VOTE_STATE_REJECTED: _ClassVar[VoteState]

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_DUPLICATE: _ClassVar[RejectReason]
    REJECT_REASON_CLOSED: _ClassVar[RejectReason]
    REJECT_REASON_REPEATED: _ClassVar[RejectReason]
VOTE_STATE_UNSPECIFIED: VoteState
VOTE_STATE_PENDING: VoteState
VOTE_STATE_ACCEPTED: VoteState
VOTE_STATE_REJECTED: VoteState
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_DUPLICATE: RejectReason
REJECT_REASON_CLOSED: RejectReason
REJECT_REASON_REPEATED: RejectReason

class VoteReceipt(_message.Message):
    __slots__ = ("vote_id", "poll_id", "option_digest", "received_at", "key_id", "signature")
    VOTE_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    OPTION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    vote_id: str
    poll_id: str
    option_digest: bytes
    received_at: _timestamp_pb2.Timestamp
    key_id: str
    signature: bytes
    def __init__(self, vote_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., option_digest: _Optional[bytes] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...
