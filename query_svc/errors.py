"""Why a query failed, and the gRPC status each reason maps to.

::

    ServiceError (voting.errors: also Unauthenticated, PermissionDenied, PollNotFound)
    └── QueryError
        ├── InvalidQuery          INVALID_ARGUMENT    BadRequest
        ├── VoteNotFound          NOT_FOUND           ResourceInfo
        ├── NotYetConsistent      DEADLINE_EXCEEDED   the token's position was not reached
        ├── VersionOutOfRange     OUT_OF_RANGE        a resume version no replica sent
        ├── ReadModelUnavailable  UNAVAILABLE         RetryInfo (also: the polls table)
        └── ShuttingDown          UNAVAILABLE         RetryInfo: reconnect elsewhere
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import status_pb2

from voting import status
from voting.errors import ServiceError


class QueryError(ServiceError):
    """Root of the query side's own refusals."""


class InvalidQuery(QueryError):
    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))
        self.violations = list(violations)

    def status(self) -> status_pb2.Status:
        return status.bad_request(self.violations)


class VoteNotFound(QueryError):
    def __init__(self, vote_id: str, message: str) -> None:
        super().__init__(message)
        self.vote_id = vote_id

    def status(self) -> status_pb2.Status:
        return status.not_found("voting.v1.Vote", self.vote_id, str(self))


class NotYetConsistent(QueryError):
    def status(self) -> status_pb2.Status:
        return status.make(grpc.StatusCode.DEADLINE_EXCEEDED, str(self))


class VersionOutOfRange(QueryError):
    def status(self) -> status_pb2.Status:
        return status.make(grpc.StatusCode.OUT_OF_RANGE, str(self))


class ReadModelUnavailable(QueryError):
    def status(self) -> status_pb2.Status:
        return status.retry_later(
            grpc.StatusCode.UNAVAILABLE, f"the read model is unavailable: {self}", after_s=1.0
        )


class ShuttingDown(QueryError):
    def status(self) -> status_pb2.Status:
        return status.retry_later(
            grpc.StatusCode.UNAVAILABLE,
            "the query service is shutting down: reconnect (with after_version) to another replica",
            after_s=0.0,
        )
