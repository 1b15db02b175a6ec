"""AdminService: operations on the read model, served by the projector process."""

from __future__ import annotations

from typing import Any

import grpc
from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError

from projector.errors import NotDrained, PollNotClosed, ProjectorError
from projector.recount import Recount, RecountOutcome
from voting import status
from voting.identity import POLL_ID
from voting.tokens import AdminGate, InvalidToken, NotPermitted
from voting.v1 import admin_service_pb2 as admin
from voting.v1 import consistency_pb2, poll_pb2, results_pb2

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_DRAIN_WAIT_S = 30.0


class AdminService:
    def __init__(self, recount: Recount, gate: AdminGate) -> None:
        self._recount = recount
        self._gate = gate

    async def RecountPoll(
        self, request: admin.RecountPollRequest, context: Context
    ) -> admin.RecountPollResponse:
        try:
            self._gate.check(context.invocation_metadata() or ())
        except InvalidToken as exc:
            await status.abort(
                context, status.error_info(grpc.StatusCode.UNAUTHENTICATED, exc.reason, str(exc))
            )
        except NotPermitted as exc:
            await status.abort(
                context, status.error_info(grpc.StatusCode.PERMISSION_DENIED, exc.reason, str(exc))
            )
        if not POLL_ID.fullmatch(request.poll_id):
            await status.abort(context, status.bad_request([("poll_id", "not a poll id")]))
        remaining: float | None = context.time_remaining()
        wait = DEFAULT_DRAIN_WAIT_S if remaining is None else max(0.0, remaining - 1.0)
        try:
            outcome = await self._recount.run(request.poll_id, drain_timeout_s=wait)
        except PollNotClosed as exc:
            await status.abort(
                context,
                status.failed_precondition(
                    "POLL_OPEN", f"voting.v1.Poll/{request.poll_id}", str(exc)
                ),
            )
        except NotDrained as exc:
            await status.abort(
                context, status.retry_later(grpc.StatusCode.UNAVAILABLE, str(exc), after_s=2.0)
            )
        except ProjectorError as exc:
            await status.abort(
                context, status.not_found("voting.v1.Poll", request.poll_id, str(exc))
            )
        except (RedisError, OSError, ClientError, BotoCoreError) as exc:
            await status.abort(
                context,
                status.retry_later(
                    grpc.StatusCode.UNAVAILABLE, f"a store is unavailable: {exc}", after_s=1.0
                ),
            )
        return admin.RecountPollResponse(results=final_results(outcome))


def final_results(outcome: RecountOutcome) -> results_pb2.Results:
    """The FINAL results as GetResults serves them: the same version, times, report and
    watermark, so a client that orders snapshots by version keeps this one."""
    final = outcome.final
    results = results_pb2.Results(
        poll_id=outcome.poll_id,
        version=final.version,
        counts=[results_pb2.OptionCount(option_id=o, votes=n) for o, n in outcome.counts.items()],
        total=sum(outcome.counts.values()),
        final=True,
        status=poll_pb2.POLL_STATUS_CLOSED,
        recount=final.report,
        watermark=[
            consistency_pb2.PartitionOffset(partition=p, offset=o)
            for p, o in sorted(final.watermark.items())
        ],
    )
    results.updated_at.FromMilliseconds(final.updated_at_ms)
    return results
