"""The single-model baseline the design argues against: ``python -m bench.baseline``.

One gRPC service on the same contract (CommandService CastVote/CastVotes, QueryService
GetResults) over one store: each vote is a conditional put in a DynamoDB table (one
item per poll and voter, so a second vote of a voter is refused by the condition), and
results are read from that same table (a Query over the poll's items, counted). No log,
no worker, no read model. A refused second vote is still answered OK: the command was
handled, and nothing was counted twice; the load generator must not retry it.

Settings come from the usual VOTING_* environment (DynamoDB endpoint and credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import grpc
from botocore.exceptions import ClientError

from voting import dynamodb
from voting.config import ServerSettings, Settings
from voting.server import server_options
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import query_service_pb2 as q
from voting.v1 import results_pb2

TABLE = "baseline-votes"
PUT_CONCURRENCY = 32


class Baseline:
    def __init__(self, ddb: Any) -> None:
        self._ddb = ddb
        self._slots = asyncio.Semaphore(PUT_CONCURRENCY)

    async def ensure_table(self) -> None:
        try:
            await self._ddb.create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": "poll_id", "KeyType": "HASH"},
                    {"AttributeName": "voter_id", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "poll_id", "AttributeType": "S"},
                    {"AttributeName": "voter_id", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if dynamodb.error_code(exc) != "ResourceInUseException":
                raise

    async def _put(self, request: cmd.CastVoteRequest) -> cmd.CastVoteResult:
        async with self._slots:
            try:
                await self._ddb.put_item(
                    TableName=TABLE,
                    Item={
                        "poll_id": {"S": request.poll_id},
                        "voter_id": {"S": request.voter_id},
                        "option_id": {"S": request.option_id},
                    },
                    ConditionExpression="attribute_not_exists(voter_id)",
                )
            except ClientError as exc:
                if dynamodb.error_code(exc) != "ConditionalCheckFailedException":
                    raise
        return cmd.CastVoteResult(response=cmd.CastVoteResponse(vote_id=request.request_id))

    async def cast_vote(self, request: cmd.CastVoteRequest, context: Any) -> cmd.CastVoteResponse:
        return (await self._put(request)).response

    async def cast_votes(
        self, request: cmd.CastVotesRequest, context: Any
    ) -> cmd.CastVotesResponse:
        results = await asyncio.gather(*(self._put(r) for r in request.requests))
        return cmd.CastVotesResponse(results=results)

    async def get_results(self, request: q.GetResultsRequest, context: Any) -> q.GetResultsResponse:
        counts: Counter[str] = Counter()
        kwargs: dict[str, Any] = {
            "TableName": TABLE,
            "KeyConditionExpression": "poll_id = :p",
            "ExpressionAttributeValues": {":p": {"S": request.poll_id}},
            "ProjectionExpression": "option_id",
        }
        while True:
            page = await self._ddb.query(**kwargs)
            counts.update(item["option_id"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        results = results_pb2.Results(poll_id=request.poll_id, total=sum(counts.values()))
        for option_id, votes in sorted(counts.items()):
            results.counts.add(option_id=option_id, votes=votes)
        results.updated_at.FromMilliseconds(time.time_ns() // 1_000_000)
        return q.GetResultsResponse(results=results)


def _unary(fn: Any, request_type: Any) -> grpc.RpcMethodHandler[Any, Any]:
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
                        "CastVote": _unary(baseline.cast_vote, cmd.CastVoteRequest),
                        "CastVotes": _unary(baseline.cast_votes, cmd.CastVotesRequest),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "voting.v1.QueryService",
                    {"GetResults": _unary(baseline.get_results, q.GetResultsRequest)},
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
