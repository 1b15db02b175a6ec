"""``voting chaos --profile short|quick|standard``: faults under steady load, then proof.

On one private local stack, a steady vote load (``bench.load``: retries unacknowledged
votes with the same request id, as a real client does) and a reader (GetResults ten
times a second) run while each component in turn is killed with ``kill -9`` and
restarted: the command service, the dedup worker, the projector, the query service and
Redis; then a second worker joins and leaves again (two rebalances). Then the poll
closes and its recount makes the results FINAL.

What it proves, from the stores themselves:
- ``lost``: acknowledged voters with no vote in DynamoDB (the source of truth);
- ``double_counted``: votes counted beyond the truth, in DynamoDB or in the live Redis
  count once the pipeline drained (the recount's report of the live count);
- ``final_matches_truth``: the FINAL tally equals the truth (each acknowledged voter's
  first vote);
- the CQRS claims: ``reads_served_while_writes_down`` (successful reads while writes
  failed) and ``writes_accepted_while_reads_down`` (votes acknowledged while reads
  failed), with ``write_unavailable_s`` and ``read_unavailable_s``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.environment import machine, private_stack, write_json
from bench.load import CLIENT_OPTIONS, LoadSpec, VoteLoad, down_windows, within
from bench.polls import close_and_await_final, create_polls
from bench.progress import Progress
from bench.stats import rounded
from voting import dynamodb
from voting.identity import VoterKeys
from voting.stack.stack import Stack
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc

OPTIONS = ("o0", "o1", "o2")


@dataclass(frozen=True)
class ChaosProfile:
    name: str
    rounds: int = 1
    down_s: float = 2.0  # how long a killed component stays down
    settle_s: float = 4.0  # between faults
    warmup_s: float = 4.0
    rate: float = 400.0  # votes/s of the steady load
    batch: int = 20
    targets: tuple[str, ...] = ("command", "worker", "projector", "query", "redis")
    rebalance: bool = True

    def planned_s(self) -> float:
        per_round = len(self.targets) * (self.down_s + self.settle_s + 3) + 3 * self.settle_s
        return 40 + self.warmup_s + self.rounds * per_round + 30


PROFILES = {
    # Inside `make test`: every fault once, correctness asserted.
    "short": ChaosProfile("short", down_s=1.0, settle_s=2.5, warmup_s=3.0, rate=300.0),
    "quick": ChaosProfile("quick", rounds=2),
    "standard": ChaosProfile("standard", rounds=5, down_s=3.0, settle_s=6.0, rate=600.0),
}


def run(*, profile: str = "quick", json_path: Path | None = None) -> dict[str, Any]:
    chosen = PROFILES[profile]
    progress = Progress(chosen.planned_s())
    progress.show("starting the local stack")
    with private_stack(services=("command", "worker", "projector", "query")) as stack:
        figures = Chaos(stack, chosen, progress).run()
    progress.done()
    result = {"benchmark": "chaos", "profile": asdict(chosen), "machine": machine(), **figures}
    result["json"] = str(write_json(result, json_path))
    return result


class Chaos:
    def __init__(self, stack: Stack, profile: ChaosProfile, progress: Progress) -> None:
        self.stack = stack
        self.profile = profile
        self.progress = progress
        self.settings = stack.settings()
        self.reads: list[tuple[float, bool]] = []
        self.faults: list[dict[str, Any]] = []
        self._stop = threading.Event()

    def run(self) -> dict[str, Any]:
        profile = self.profile
        (poll_id,) = create_polls(self.settings, 1, len(OPTIONS), prefix="chaos")
        load = VoteLoad(
            self.settings.command.listen,
            LoadSpec(
                polls=[poll_id],
                options=OPTIONS,
                batch=profile.batch,
                lanes=2,
                rate=profile.rate,
                timeout_s=10.0,
            ),
        )
        driver = threading.Thread(target=self._drive, args=(load, poll_id), daemon=True)
        started = time.monotonic()
        driver.start()
        time.sleep(profile.warmup_s)
        for round_ in range(profile.rounds):
            for target in profile.targets:
                self._crash(target, round_, started, load)
            if profile.rebalance:
                self._rebalance(round_, started, load)
        self._stop.set()
        self.progress.show("faults done", "waiting for every vote to be acknowledged")
        driver.join(300)
        self.progress.show("closing the poll", "waiting for FINAL")
        finals = close_and_await_final(self.settings, [poll_id])
        return self._verdict(poll_id, load, finals.get(poll_id), started)

    def _drive(self, load: VoteLoad, poll_id: str) -> None:
        async def main() -> None:
            await asyncio.gather(load.run(self._stop.is_set), self._read(poll_id))

        asyncio.run(main())

    async def _read(self, poll_id: str) -> None:
        target = self.settings.query.listen
        async with grpc.aio.insecure_channel(target, options=CLIENT_OPTIONS) as channel:
            stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)
            while not self._stop.is_set():
                try:
                    await stub.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=1.0)
                    self.reads.append((time.monotonic(), True))
                except grpc.aio.AioRpcError:
                    self.reads.append((time.monotonic(), False))
                await asyncio.sleep(0.1)

    def _crash(self, target: str, round_: int, started: float, load: VoteLoad) -> None:
        self.progress.show(
            f"round {round_ + 1}", f"kill -9 {target} ({len(load.record.acks)} acknowledged)"
        )
        killed = time.monotonic()
        self.stack.kill(target)
        time.sleep(self.profile.down_s)
        self.stack.restart(target)
        self.faults.append(
            {
                "component": target,
                "action": "kill -9, restart",
                "at_s": rounded(killed - started),
                "back_after_s": rounded(time.monotonic() - killed),
            }
        )
        time.sleep(self.profile.settle_s)

    def _rebalance(self, round_: int, started: float, load: VoteLoad) -> None:
        name = f"worker-extra-{round_}"
        self.progress.show(f"round {round_ + 1}", f"a second worker joins ({name})")
        joined = time.monotonic()
        self.stack.start_extra(name, "worker")
        self.faults.append(
            {"component": name, "action": "join (rebalance)", "at_s": rounded(joined - started)}
        )
        time.sleep(2 * self.profile.settle_s)
        self.progress.show(f"round {round_ + 1}", f"{name} leaves (SIGTERM)")
        left = time.monotonic()
        code = self.stack.children.pop(name).terminate(20)
        self.faults.append(
            {
                "component": name,
                "action": "leave (SIGTERM, rebalance)",
                "at_s": rounded(left - started),
                "exit_code": code,
            }
        )
        time.sleep(self.profile.settle_s)

    def _verdict(self, poll_id: str, load: VoteLoad, final: Any, started: float) -> dict[str, Any]:
        record = load.record
        truth = record.truth[poll_id]
        keys = VoterKeys.from_settings(self.settings.security)
        by_key = {keys.key(voter): option for voter, option in truth.items()}
        ledger = self._ledger(poll_id)
        lost = sum(1 for key in by_key if key not in ledger)
        miscounted = sum(1 for key, option in by_key.items() if ledger.get(key, option) != option)
        truth_counts = record.truth_counts(poll_id, OPTIONS)
        final_counts = {c.option_id: c.votes for c in final.counts} if final else {}
        live_counts = {c.option_id: c.votes for c in final.recount.live_counts} if final else {}
        double_counted = max(0, len(ledger) - len(by_key)) + sum(
            max(0, live_counts.get(o, 0) - truth_counts[o]) for o in OPTIONS
        )
        writes = [(c.ended, c.ok) for c in record.calls]
        write_down = down_windows(writes)
        read_down = down_windows(self.reads)
        return {
            "acked": len(record.acks),
            "voters": len(truth),
            "lost": lost,
            "double_counted": double_counted,
            "miscounted": miscounted,
            "final": bool(final and final.final),
            "final_matches_truth": bool(final and final.final)
            and {o: final_counts.get(o, 0) for o in OPTIONS} == truth_counts,
            "live_matched_recount": bool(final and final.recount.matched),
            "truth_counts": truth_counts,
            "final_counts": final_counts,
            "write_unavailable_s": rounded(sum(b - a for a, b in write_down)),
            "read_unavailable_s": rounded(sum(b - a for a, b in read_down)),
            "reads_served_while_writes_down": sum(
                1 for at, ok in self.reads if ok and within(at, write_down)
            ),
            "writes_accepted_while_reads_down": sum(
                1 for ack in record.acks if within(ack.at, read_down)
            ),
            "retried_calls": record.attempts_failed,
            "refused": record.refused,
            "failure_codes": record.failure_codes,
            "reads": len(self.reads),
            "faults": self.faults,
            "seconds": rounded(time.monotonic() - started),
        }

    def _ledger(self, poll_id: str) -> dict[str, str]:
        """voter key -> option of every vote of the poll in DynamoDB."""
        client = dynamodb.sync_client(self.settings.dynamodb)
        kwargs: dict[str, Any] = {
            "TableName": self.settings.dynamodb.votes_table,
            "FilterExpression": "poll_id = :p",
            "ExpressionAttributeValues": {":p": {"S": poll_id}},
            "ConsistentRead": True,
        }
        found: dict[str, str] = {}
        while True:
            page = client.scan(**kwargs)
            for item in page.get("Items", []):
                found[item["voter_key"]["S"]] = item["option_id"]["S"]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
