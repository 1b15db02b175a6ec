"""gRPC error statuses with ``google.rpc`` details, built one way for every service.

A status is built as a ``google.rpc.Status`` message; servers abort with it (the details
travel in the ``grpc-status-details-bin`` trailer) and CastVotes embeds it per vote.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "voting.v1"

DetailT = TypeVar("DetailT", bound=Message)


def make(code: grpc.StatusCode, message: str, *details: Message) -> status_pb2.Status:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return status_pb2.Status(code=code.value[0], message=message, details=packed)


OK = status_pb2.Status(code=code_pb2.OK)


def bad_request(violations: Iterable[tuple[str, str]]) -> status_pb2.Status:
    violations = list(violations)
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in violations
        ]
    )
    summary = "; ".join(f"{f}: {d}" for f, d in violations)
    return make(grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {summary}", detail)


def not_found(resource_type: str, name: str, message: str) -> status_pb2.Status:
    return make(
        grpc.StatusCode.NOT_FOUND,
        message,
        error_details_pb2.ResourceInfo(resource_type=resource_type, resource_name=name),
    )


def already_exists(resource_type: str, name: str, message: str) -> status_pb2.Status:
    return make(
        grpc.StatusCode.ALREADY_EXISTS,
        message,
        error_details_pb2.ResourceInfo(resource_type=resource_type, resource_name=name),
    )


def failed_precondition(kind: str, subject: str, description: str) -> status_pb2.Status:
    detail = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=kind, subject=subject, description=description
            )
        ]
    )
    return make(grpc.StatusCode.FAILED_PRECONDITION, description, detail)


def error_info(
    code: grpc.StatusCode, reason: str, message: str, **metadata: str
) -> status_pb2.Status:
    return make(
        code, message, error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    )


def retry_delay(after_s: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(max(1, int(after_s * 1000)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def retry_later(code: grpc.StatusCode, message: str, *, after_s: float) -> status_pb2.Status:
    return make(code, message, retry_delay(after_s))


async def abort(
    context: grpc.aio.ServicerContext[object, object], status: status_pb2.Status
) -> NoReturn:
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def from_error(error: grpc.aio.AioRpcError | grpc.RpcError) -> status_pb2.Status | None:
    """The rich status a client received, or None when the server sent no details."""
    found: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    return found


def unpack(status: status_pb2.Status, detail_type: type[DetailT]) -> list[DetailT]:
    found: list[DetailT] = []
    for holder in status.details:
        if holder.Is(detail_type.DESCRIPTOR):  # type: ignore[arg-type]
            detail = detail_type()
            holder.Unpack(detail)
            found.append(detail)
    return found
