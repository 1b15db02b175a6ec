"""Errors of the shared runtime.

::

    VotingError
    ├── ConfigError            a setting is missing or malformed
    ├── InfrastructureError    Kafka, DynamoDB or Redis refused or failed an operation
    │   └── DeliveryError      the broker did not acknowledge a record
    └── EventError             a record is not an event this version understands
        ├── UnknownEventType
        └── UndecodableEvent

Each service package roots its own errors in ``VotingError`` too.
"""

from __future__ import annotations


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
