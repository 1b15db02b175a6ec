"""Steps 1 and 2 of a batch (see ``worker``): decide a partition's records, then write
the accepted votes to the ledger, deciding again whenever the ledger knows better.

The ledger wins twice over. A vote for a closed poll, from a voter the state no longer
holds, is looked up there: the voter's counted vote again is REPEATED, anything else
CLOSED. And an accepted vote whose voter the ledger already holds another vote for (the
state was lost) is decided again with the stored vote as the voter's: a DUPLICATE, or a
REPEATED if it is the same vote id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from confluent_kafka import Message

from command_svc.worker.errors import LedgerUnavailable, WorkerError
from command_svc.worker.partition import Batch, PartitionProcessor
from command_svc.worker.ports import VoteLedger
from voting import telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")
ROUNDS = 10


async def decide_and_record(
    proc: PartitionProcessor,
    records: list[Message],
    ledger: VoteLedger,
    *,
    timeout_s: float,
    received_ns: int = 0,
) -> Batch:
    """The batch, decided and with its accepted votes durably in the ledger. Every ledger
    call is bounded by ``timeout_s`` (the worker must poll again well inside
    max.poll.interval); raises LedgerUnavailable if it could not tell."""
    truths: dict[tuple[str, str], str] = {}
    after_close: dict[tuple[str, str], str] = {}
    for _ in range(ROUNDS):
        batch = proc.decide(records, truths, after_close=after_close, received_ns=received_ns)
        if batch.lookups:
            after_close.update(await _bounded(ledger.stored_votes(batch.lookups), batch, timeout_s))
            continue
        if not batch.ledger:
            return batch
        started = telemetry.now_ns()
        conflicts = await _bounded(
            ledger.record(batch.ledger, started // 1_000_000), batch, timeout_s
        )
        batch.trace.step("dynamodb write", started, telemetry.now_ns())
        if not conflicts:
            return batch
        batch.trace.finish(ok=False, error="decided again: DynamoDB knew other votes")
        for index, stored_vote_id in conflicts.items():
            entry = batch.ledger[index]
            truths[(entry.poll_id, entry.voter_key)] = stored_vote_id
        log.warning(
            "state disagreed with DynamoDB; re-deciding", extra={"conflicts": len(conflicts)}
        )
    raise WorkerError("decisions did not converge with DynamoDB")


async def _bounded(call: Awaitable[T], batch: Batch, timeout_s: float) -> T:
    try:
        return await asyncio.wait_for(call, timeout_s)
    except TimeoutError as exc:
        batch.trace.finish(ok=False, error="DynamoDB timed out")
        raise LedgerUnavailable(f"DynamoDB did not answer in {timeout_s}s") from exc
    except LedgerUnavailable as exc:
        batch.trace.finish(ok=False, error=str(exc))
        raise
