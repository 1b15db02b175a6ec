"""Why a command was refused, and the gRPC status each reason maps to.

::

    ServiceError (voting.errors: also Unauthenticated, PermissionDenied, PollNotFound)
    └── CommandError
        ├── InvalidCommand       INVALID_ARGUMENT    BadRequest field violations
        ├── OptionNotFound       NOT_FOUND           ResourceInfo
        ├── PollAlreadyExists    ALREADY_EXISTS      ResourceInfo
        ├── PollNotOpen          FAILED_PRECONDITION PreconditionFailure
        ├── RequestIdReused      FAILED_PRECONDITION PreconditionFailure
        ├── Overloaded           RESOURCE_EXHAUSTED  RetryInfo
        ├── RateLimited          RESOURCE_EXHAUSTED  QuotaFailure, RetryInfo
        └── Unavailable          UNAVAILABLE         RetryInfo
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2, status_pb2

from voting import status
from voting.errors import ServiceError


class CommandError(ServiceError):
    """Root of the command side's own refusals."""


class InvalidCommand(CommandError):
    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))
        self.violations = list(violations)

    def status(self) -> status_pb2.Status:
        return status.bad_request(self.violations)


class OptionNotFound(CommandError):
    def __init__(self, poll_id: str, option_id: str) -> None:
        super().__init__(f"poll {poll_id!r} has no option {option_id!r}")
        self.poll_id = poll_id
        self.option_id = option_id

    def status(self) -> status_pb2.Status:
        return status.not_found(
            "voting.v1.PollOption", f"{self.poll_id}/{self.option_id}", str(self)
        )


class PollAlreadyExists(CommandError):
    def __init__(self, poll_id: str) -> None:
        super().__init__(f"poll {poll_id!r} already exists (created by another request)")
        self.poll_id = poll_id

    def status(self) -> status_pb2.Status:
        return status.already_exists("voting.v1.Poll", self.poll_id, str(self))


class PollNotOpen(CommandError):
    CLOSED = "POLL_CLOSED"
    NOT_OPEN_YET = "POLL_NOT_OPEN_YET"

    def __init__(self, poll_id: str, kind: str) -> None:
        what = "is closed" if kind == self.CLOSED else "is not open yet"
        super().__init__(f"poll {poll_id!r} {what}")
        self.poll_id = poll_id
        self.kind = kind

    def status(self) -> status_pb2.Status:
        return status.failed_precondition(self.kind, f"voting.v1.Poll/{self.poll_id}", str(self))


class RequestIdReused(CommandError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"request_id {request_id!r} was already used for a different command")
        self.request_id = request_id

    def status(self) -> status_pb2.Status:
        return status.failed_precondition(
            "REQUEST_ID_REUSED", f"request_id/{self.request_id}", str(self)
        )


class Overloaded(CommandError):
    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def status(self) -> status_pb2.Status:
        return status.retry_later(
            grpc.StatusCode.RESOURCE_EXHAUSTED, str(self), after_s=self.retry_after_s
        )


class Unavailable(CommandError):
    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def status(self) -> status_pb2.Status:
        return status.retry_later(
            grpc.StatusCode.UNAVAILABLE, str(self), after_s=self.retry_after_s
        )


class RateLimited(CommandError):
    """A voter's or a caller's token bucket is short: retry after ``retry_after_s``."""

    def __init__(self, subject: str, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.subject = subject
        self.retry_after_s = retry_after_s

    def status(self) -> status_pb2.Status:
        return status.make(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            str(self),
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=self.subject, description=str(self)
                    )
                ]
            ),
            status.retry_delay(self.retry_after_s),
        )
