"""What operators run against the projector's stores: ``voting recount POLL``, ``voting
recount --sweep`` (the Helm chart's CronJob) and ``voting projection rebuild``; each prints
what it found and did."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis

from projector.app import active_namespace
from projector.errors import ProjectorError
from projector.rebuild import RebuildOutcome, rebuild
from projector.recount import Recount, RecountOutcome
from projector.recount_source import DynamoDBRecountSource
from projector.store import ReadModelWriter
from voting import dynamodb, logs
from voting import redis as redis_clients
from voting.config import Settings
from voting.readmodel import Keys


def _recount(ddb: Any, settings: Settings, client: aioredis.Redis, keys: Keys) -> Recount:
    """A recount outside the projector process: it writes no positions or guards, so the
    read model needs no log id."""
    writer = ReadModelWriter(
        client, keys, log_id="", status_ttl_s=settings.projector.vote_status_ttl_s
    )
    return Recount(DynamoDBRecountSource(ddb, settings.dynamodb), writer)


async def recount_once(settings: Settings, poll_id: str, *, wait_s: float) -> RecountOutcome:
    client = redis_clients.client(settings.redis)
    try:
        keys = Keys(await active_namespace(client))
        async with dynamodb.client(settings.dynamodb) as ddb:
            return await _recount(ddb, settings, client, keys).run(poll_id, drain_timeout_s=wait_s)
    finally:
        await client.aclose()


def recount_main(poll_id: str, *, wait_s: float) -> int:
    """``voting recount POLL``: prints the final tally and whether the live count matched."""
    settings = Settings.from_env()
    logs.configure("recount", level="WARNING")
    try:
        outcome = asyncio.run(recount_once(settings, poll_id, wait_s=wait_s))
    except ProjectorError as exc:
        print(f"voting recount: {exc}", file=sys.stderr)
        return 1
    total = sum(outcome.counts.values())
    print(f"final tally of {poll_id}:")
    for option_id, count in outcome.counts.items():
        share = f"{100 * count / total:5.1f}%" if total else "    -"
        print(f"  {option_id:<24} {count:>12}  {share}")
    print(f"  {'total':<24} {total:>12}")
    live_total = sum(outcome.live.values())
    if outcome.matched:
        print(f"live count matched the recount ({live_total} votes)")
    else:
        print(f"live count DIFFERED (live total {live_total}); the read model was repaired:")
        for option_id, count in outcome.counts.items():
            if outcome.live.get(option_id, 0) != count:
                print(f"  {option_id}: live {outcome.live.get(option_id, 0)}, recount {count}")
    if not outcome.finalized:
        print("(the results were already final; nothing changed)")
    return 0


def sweep_main(*, wait_s: float) -> int:
    """``voting recount --sweep``: the safety net behind the automatic recount on close
    (a CronJob in the Helm chart). Exits 1 if any closed poll is still not final."""
    settings = Settings.from_env()
    logs.configure("recount", level="WARNING")

    async def go() -> tuple[int, int]:
        client = redis_clients.client(settings.redis)
        try:
            keys = Keys(await active_namespace(client))
            async with dynamodb.client(settings.dynamodb) as ddb:
                recount = _recount(ddb, settings, client, keys)
                pending = await recount.pending()
                failed = 0
                for poll_id in pending:
                    try:
                        outcome = await recount.run(poll_id, drain_timeout_s=wait_s)
                    except ProjectorError as exc:
                        failed += 1
                        print(f"{poll_id}: not final yet: {exc}", file=sys.stderr)
                        continue
                    state = "matched" if outcome.matched else "DIFFERED, repaired"
                    print(f"{poll_id}: final, {sum(outcome.counts.values())} votes, {state}")
                return len(pending), failed
        finally:
            await client.aclose()

    pending, failed = asyncio.run(go())
    print(f"{pending} closed poll(s) needed a recount; {pending - failed} now final")
    return 1 if failed else 0


def rebuild_main(*, drop_previous: bool) -> int:
    """``voting projection rebuild``."""
    settings = Settings.from_env()
    logs.configure("rebuild", level="WARNING")

    async def go() -> RebuildOutcome:
        client = redis_clients.client(settings.redis, timeout_s=30)
        try:
            return await rebuild(settings, client, drop_previous=drop_previous)
        finally:
            await client.aclose()

    outcome = asyncio.run(go())
    print(
        f"rebuilt the read model into {outcome.namespace} from {outcome.records:,} records "
        f"({outcome.polls} polls, {outcome.finalized} final) in {outcome.seconds:.1f}s; "
        f"readers switched from {outcome.previous}"
        + (" (deleted)" if drop_previous else " (kept; delete it with --drop-previous next time)")
    )
    return 0
