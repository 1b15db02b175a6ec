"""Why a gateway request failed, and the HTTP status each reason maps to.

::

    GatewayError
    └── UpstreamError   the QueryService refused or could not answer; the HTTP status
                        follows its gRPC code (400, 404, 503, 504, otherwise 502)

The gateway has no rules of its own: every refusal is the query service's.
"""

from __future__ import annotations

from typing import Any

import grpc

from voting.errors import VotingError

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
# The request itself is wrong: asking again cannot help.
_PERMANENT = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
}


class GatewayError(VotingError):
    """Root of the gateway's errors."""


class UpstreamError(GatewayError):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, exc: grpc.aio.AioRpcError) -> UpstreamError:
        return cls(exc.code(), exc.details() or "")

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 502)

    @property
    def permanent(self) -> bool:
        return self.code in _PERMANENT

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code.name, "message": self.message}}
