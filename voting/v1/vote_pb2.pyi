from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

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
