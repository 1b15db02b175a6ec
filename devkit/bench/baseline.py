"""The single-model design the system is compared with: ``python -m devkit.bench.baseline``.

One gRPC service on the same contract (CreatePoll, ClosePoll, CastVote, CastVotes,
GetResults) over one DynamoDB table, built as a competent engineer would build it:

- A vote is counted when its write returns, and the write is the strongest cheap
  primitive DynamoDB has: one TransactWriteItems per chunk of a batch, holding a
  conditional put per vote (``attribute_not_exists``: one vote per voter and poll), an
  ADD to a counter item per option the chunk touches, and a condition check that the
  poll is open. Votes and counts can never disagree, and results are final the moment
  the poll is closed: no log, no worker, no read model, no recount.
- Counter items are sharded (``SHARDS`` per option) and each in-flight chunk holds a
  shard of its own, so concurrent transactions never conflict on a counter. Results are
  one strongly consistent Query over the poll's counter items (options x shards items,
  whatever the number of votes).
- A transaction cancelled because some voters had voted already is retried without
  them (the cancellation reasons say which); a repeat vote is answered OK, as CQRS
  answers it, and is not counted.

Settings come from the usual VOTING_* environment (DynamoDB endpoint and credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from botocore.exceptions import ClientError
from google.rpc import code_pb2, status_pb2

from voting import dynamodb
from voting.config import ServerSettings, Settings
from voting.server import server_options
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q
from voting.v1 import results_pb2

TABLE = "baseline-votes"
TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
SHARDS = 16  # counter shards per option, and so transactions in flight
CONFLICT_RETRIES = 20


def _counts_pk(poll_id: str) -> dict[str, str]:
    return {"S": f"{poll_id}#counts"}


def _poll_key(poll_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{poll_id}#poll"}, "sk": {"S": "poll"}}


class PollClosed(Exception):
    pass


class Baseline:
    def __init__(self, ddb: Any) -> None:
        self._ddb = ddb
        self._shards: asyncio.Queue[int] = asyncio.Queue()
        for shard in range(SHARDS):
            self._shards.put_nowait(shard)
        self._options: dict[str, frozenset[str]] = {}

    async def ensure_table(self) -> None:
        try:
            await self._ddb.create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if dynamodb.error_code(exc) != "ResourceInUseException":
                raise

    # -- commands ------------------------------------------------------------------------

    async def create_poll(
        self, request: cmd.CreatePollRequest, context: Any
    ) -> cmd.CreatePollResponse:
        options = [o.option_id for o in request.options]
        with contextlib.suppress(ClientError):  # created already: a replay
            await self._ddb.put_item(
                TableName=TABLE,
                Item={
                    **_poll_key(request.poll_id),
                    "status": {"S": "open"},
                    "options": {"SS": options},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        self._options[request.poll_id] = frozenset(options)
        return cmd.CreatePollResponse(poll_id=request.poll_id)

    async def close_poll(
        self, request: cmd.ClosePollRequest, context: Any
    ) -> cmd.ClosePollResponse:
        await self._ddb.update_item(
            TableName=TABLE,
            Key=_poll_key(request.poll_id),
            UpdateExpression="SET #s = :closed",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":closed": {"S": "closed"}},
        )
        return cmd.ClosePollResponse(poll_id=request.poll_id)

    async def cast_vote(self, request: cmd.CastVoteRequest, context: Any) -> cmd.CastVoteResponse:
        (result,) = await self._cast([request])
        if result.status.code != code_pb2.OK:
            await context.abort(grpc.StatusCode(result.status.code), result.status.message)
        return result.response

    async def cast_votes(
        self, request: cmd.CastVotesRequest, context: Any
    ) -> cmd.CastVotesResponse:
        return cmd.CastVotesResponse(results=await self._cast(list(request.requests)))

    async def _cast(self, requests: Sequence[cmd.CastVoteRequest]) -> list[cmd.CastVoteResult]:
        results = [self._check(r) for r in requests]
        valid = [r for r, result in zip(requests, results, strict=True) if result is None]
        by_poll: dict[str, list[cmd.CastVoteRequest]] = {}
        for r in valid:
            by_poll.setdefault(r.poll_id, []).append(r)
        chunks = [
            chunk
            for votes in by_poll.values()
            for chunk in _chunks(
                votes, TRANSACTION_ITEMS - 1 - len(self._options[votes[0].poll_id])
            )
        ]
        outcomes = await asyncio.gather(*(self._write(c) for c in chunks), return_exceptions=True)
        refused: set[str] = set()  # request ids of chunks whose poll was closed
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, PollClosed):
                refused.update(r.request_id for r in chunk)
            elif isinstance(outcome, BaseException):
                raise outcome
        answered = []
        for request, checked in zip(requests, results, strict=True):
            result = checked
            if result is None and request.request_id in refused:
                result = _refused(code_pb2.FAILED_PRECONDITION, f"poll {request.poll_id} is closed")
            answered.append(
                result
                or cmd.CastVoteResult(
                    status=status_pb2.Status(code=code_pb2.OK),
                    response=cmd.CastVoteResponse(vote_id=request.request_id),
                )
            )
        return answered

    def _check(self, request: cmd.CastVoteRequest) -> cmd.CastVoteResult | None:
        options = self._options.get(request.poll_id)
        if options is None:
            return _refused(code_pb2.NOT_FOUND, f"no poll {request.poll_id}")
        if request.option_id not in options or not request.voter_id:
            return _refused(code_pb2.INVALID_ARGUMENT, "unknown option or no voter")
        return None

    async def _write(self, chunk: list[cmd.CastVoteRequest]) -> None:
        """One transaction: the chunk's new votes, their counts, the poll still open.
        Voters who had voted already are dropped and the rest written again."""
        poll_id = chunk[0].poll_id
        first: dict[str, cmd.CastVoteRequest] = {}
        for r in chunk:
            first.setdefault(r.voter_id, r)  # a voter twice in one chunk: the first counts
        votes = list(first.values())
        shard = await self._shards.get()
        try:
            for _ in range(CONFLICT_RETRIES):
                if not votes:
                    return
                items = _transaction(poll_id, votes, shard)
                try:
                    await self._ddb.transact_write_items(TransactItems=items)
                    return
                except ClientError as exc:
                    if dynamodb.error_code(exc) != "TransactionCanceledException":
                        raise
                    reasons = [r.get("Code", "None") for r in exc.response["CancellationReasons"]]
                if reasons[0] == "ConditionalCheckFailed":
                    raise PollClosed(poll_id)
                voted = {
                    i - 1 for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"
                }
                votes = [v for i, v in enumerate(votes) if i not in voted]
                if not voted:  # a conflict with another voter's transaction: retry
                    await asyncio.sleep(0.01)
            raise RuntimeError(f"a chunk of {len(votes)} votes kept conflicting")
        finally:
            self._shards.put_nowait(shard)

    # -- queries -------------------------------------------------------------------------

    async def get_results(self, request: q.GetResultsRequest, context: Any) -> q.GetResultsResponse:
        counts: Counter[str] = Counter()
        async for item in self._query(request.poll_id):
            option_id = item["sk"]["S"].rsplit("#", 1)[0]
            counts[option_id] += int(item["votes"]["N"])
        poll = await self._ddb.get_item(
            TableName=TABLE, Key=_poll_key(request.poll_id), ConsistentRead=True
        )
        if "Item" not in poll:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no poll {request.poll_id}")
        results = results_pb2.Results(
            poll_id=request.poll_id,
            total=sum(counts.values()),
            final=poll["Item"]["status"]["S"] == "closed",
        )
        for option_id in sorted(o for o in poll["Item"]["options"]["SS"]):
            results.counts.add(option_id=option_id, votes=counts[option_id])
        return q.GetResultsResponse(results=results)

    async def _query(self, poll_id: str) -> AsyncIterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": _counts_pk(poll_id)},
            "ConsistentRead": True,
        }
        while True:
            page = await self._ddb.query(**kwargs)
            for item in page.get("Items", []):
                yield item
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _chunks(votes: list[cmd.CastVoteRequest], size: int) -> list[list[cmd.CastVoteRequest]]:
    return [votes[i : i + size] for i in range(0, len(votes), size)]


def _transaction(poll_id: str, votes: list[cmd.CastVoteRequest], shard: int) -> list[Any]:
    """The poll check first, then one put per vote, then one ADD per option: the
    cancellation reasons come back in this order."""
    per_option = Counter(v.option_id for v in votes)
    return [
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": _poll_key(poll_id),
                "ConditionExpression": "#s = :open",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":open": {"S": "open"}},
            }
        },
        *(
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "pk": {"S": poll_id},
                        "sk": {"S": v.voter_id},
                        "option_id": {"S": v.option_id},
                        "vote_id": {"S": v.request_id},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for v in votes
        ),
        *(
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": _counts_pk(poll_id), "sk": {"S": f"{option_id}#{shard}"}},
                    "UpdateExpression": "ADD votes :n",
                    "ExpressionAttributeValues": {":n": {"N": str(n)}},
                }
            }
            for option_id, n in sorted(per_option.items())
        ),
    ]


def _refused(code: int, message: str) -> cmd.CastVoteResult:
    return cmd.CastVoteResult(status=status_pb2.Status(code=code, message=message))


def unary(fn: Any, request_type: Any) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary handler on the contract's messages (the bench servers' one way)."""
    return grpc.unary_unary_rpc_method_handler(
        fn,
        request_deserializer=request_type.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )


async def serve(port: int) -> None:
    settings = Settings.from_env()
    async with dynamodb.client(settings.dynamodb) as ddb:
        baseline = Baseline(ddb)
        await baseline.ensure_table()
        server = grpc.aio.server(options=server_options(ServerSettings()))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "voting.v1.CommandService",
                    {
                        "CreatePoll": unary(baseline.create_poll, cmd.CreatePollRequest),
                        "ClosePoll": unary(baseline.close_poll, cmd.ClosePollRequest),
                        "CastVote": unary(baseline.cast_vote, cmd.CastVoteRequest),
                        "CastVotes": unary(baseline.cast_votes, cmd.CastVotesRequest),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "voting.v1.QueryService",
                    {"GetResults": unary(baseline.get_results, q.GetResultsRequest)},
                ),
            )
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
