"""Errors of the shared runtime.

::

    VotingError
    ├── ConfigError            a setting is missing or malformed
    ├── InfrastructureError    Kafka, DynamoDB or Redis refused or failed an operation
    │   └── DeliveryError      the broker did not acknowledge a record
    ├── EventError             a record is not an event this version understands
    │   ├── UnknownEventType
    │   └── UndecodableEvent
    └── ServiceError           a refused request; ``status()`` is its gRPC status
        ├── Unauthenticated    UNAUTHENTICATED    ErrorInfo
        ├── PermissionDenied   PERMISSION_DENIED  ErrorInfo
        ├── PollNotFound       NOT_FOUND          ResourceInfo
        └── (each service's own root: CommandError, QueryError)

Refusals that every service makes are defined here once; each service roots its own in
``ServiceError`` and answers any ``ServiceError`` with its status.
"""

from __future__ import annotations

import grpc
from google.rpc import status_pb2

from voting import status


class VotingError(Exception):
    """Root of every error raised on purpose by this project."""


class ConfigError(VotingError):
    """A setting is missing or malformed; the message names the variable."""


class InfrastructureError(VotingError):
    """An operation on Kafka, DynamoDB or Redis failed."""


class DeliveryError(InfrastructureError):
    """The broker did not acknowledge a record; it may or may not be in the log."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class EventError(VotingError):
    """A record does not hold an event this version can read."""


class UnknownEventType(EventError):
    """The record's event-type or schema-version header is missing or unknown."""


class UndecodableEvent(EventError):
    """The record says it holds a known event but its bytes do not parse."""


class ServiceError(VotingError):
    """A request refused for a reason the caller is told: ``status()`` is the gRPC status
    (code, message, ``google.rpc`` details) it is answered with."""

    def status(self) -> status_pb2.Status:
        raise NotImplementedError


class Unauthenticated(ServiceError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def status(self) -> status_pb2.Status:
        return status.error_info(grpc.StatusCode.UNAUTHENTICATED, self.reason, str(self))


class PermissionDenied(ServiceError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def status(self) -> status_pb2.Status:
        return status.error_info(grpc.StatusCode.PERMISSION_DENIED, self.reason, str(self))


class PollNotFound(ServiceError):
    def __init__(self, poll_id: str, message: str = "") -> None:
        super().__init__(message or f"poll {poll_id!r} does not exist")
        self.poll_id = poll_id

    def status(self) -> status_pb2.Status:
        return status.not_found("voting.v1.Poll", self.poll_id, str(self))
