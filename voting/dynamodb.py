"""DynamoDB clients and the tables' definitions.

Tables (names configurable):

``polls``    key ``poll_id``. One item per poll: definition, status, idempotency keys.
``votes``    key ``pk`` = ``"<poll_id>#<shard>"``, sort key ``voter_key``. One item per
             accepted vote, the source of truth. A poll's votes are spread over
             ``ledger_shards`` partition keys because one partition key takes ~1000
             writes/s on AWS; the recount queries every shard of the poll in parallel and
             never scans other polls' votes.
``results``  key ``poll_id``. Final tallies written by the recount.
``checkpoints``  key ``name``. Where each dedup worker partition's restore starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import aioboto3
import boto3
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from voting.config import DynamoDBSettings
from voting.errors import InfrastructureError

log = logging.getLogger(__name__)

_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 10}
_RETRIES = {"mode": "standard", "max_attempts": 4}


def _credentials(settings: DynamoDBSettings) -> dict[str, str]:
    if not settings.access_key_id:
        return {}
    return {
        "aws_access_key_id": settings.access_key_id,
        "aws_secret_access_key": settings.secret_access_key,
    }


def client(settings: DynamoDBSettings) -> AbstractAsyncContextManager[Any]:
    """An async DynamoDB client (``async with client(s) as ddb``)."""
    session = aioboto3.Session()
    return session.client(  # type: ignore[no-any-return]
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url or None,
        **_credentials(settings),
        config=AioConfig(
            max_pool_connections=settings.max_pool_connections,
            retries=_RETRIES,
            # botocore's client-side check of every request's shape was 17% of the
            # worker's CPU (a 100-item transaction per call); DynamoDB checks it anyway
            # and answers ValidationException.
            parameter_validation=False,
            **_TIMEOUTS,
        ),
    )


def sync_client(settings: DynamoDBSettings) -> Any:
    """A blocking client, for tools and tests."""
    return boto3.client(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url or None,
        **_credentials(settings),
        config=Config(
            max_pool_connections=settings.max_pool_connections, retries=_RETRIES, **_TIMEOUTS
        ),
    )


def vote_pk(poll_id: str, shard: int) -> str:
    return f"{poll_id}#{shard}"


def ledger_shard(voter_key: str, shards: int) -> int:
    """The shard of a voter's entry; stable for a given key and shard count."""
    digest = hashlib.blake2b(voter_key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shards


def table_definitions(settings: DynamoDBSettings) -> list[dict[str, Any]]:
    def table(name: str, hash_key: str, range_key: str | None = None) -> dict[str, Any]:
        keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        attrs = [{"AttributeName": hash_key, "AttributeType": "S"}]
        if range_key:
            keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
            attrs.append({"AttributeName": range_key, "AttributeType": "S"})
        return {
            "TableName": name,
            "KeySchema": keys,
            "AttributeDefinitions": attrs,
            "BillingMode": "PAY_PER_REQUEST",
        }

    return [
        table(settings.polls_table, "poll_id"),
        table(settings.votes_table, "pk", "voter_key"),
        table(settings.results_table, "poll_id"),
        table(settings.checkpoints_table, "name"),
    ]


async def ensure_tables(settings: DynamoDBSettings) -> None:
    """Creates missing tables and waits until they are active; existing ones are kept."""
    async with client(settings) as ddb:
        for definition in table_definitions(settings):
            try:
                await ddb.create_table(**definition)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceInUseException":
                    raise InfrastructureError(
                        f"cannot create table {definition['TableName']}: {exc}"
                    ) from exc
        for definition in table_definitions(settings):
            for _ in range(300):
                described = await ddb.describe_table(TableName=definition["TableName"])
                if described["Table"]["TableStatus"] == "ACTIVE":
                    break
                await asyncio.sleep(0.2)
            else:
                raise InfrastructureError(f"table {definition['TableName']} never became active")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
