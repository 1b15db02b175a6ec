"""``devkit chaos --profile P [--seed N]``: a seeded random nemesis under real load, then
a checker over the whole recorded history.

On a private local stack run as ``devkit up`` runs it (Redis with AOF, DynamoDB Local on
disk), with two command service processes and two workers:

1. The end-to-end capacity is measured flat out for a few seconds (accepted votes counted
   in Redis per second, the backlog kept bounded); the load then runs at
   ``load_fraction`` of it, for the whole run: unary and batched calls over both command
   processes, repeat voters, ``short_deadline_ratio`` of first attempts with a deadline
   of a few milliseconds, every unanswered vote retried with the same request id (often
   on the other process), and a reader calling GetResults ten times a second.
2. The nemesis (``bench.nemesis``) kills and pauses every process and store on a
   schedule drawn from the seed. One poll is closed while its votes are in flight; the
   other after the last fault.
3. Once both polls are FINAL, the checker (``bench.checker``) judges the history against
   the stores. Any violation: the JSON names the first examples, the history is saved
   next to it, and the command exits 1. The seed replays the same schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import secrets
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import redis.asyncio as aioredis

from devkit.bench.checker import Observed, check
from devkit.bench.environment import RESULTS, machine, private_stack, write_json
from devkit.bench.load import CLIENT_OPTIONS, LoadSpec, VoteLoad, down_windows, within
from devkit.bench.nemesis import Kind, Nemesis, Schedule
from devkit.bench.polls import create_polls
from devkit.bench.progress import Progress
from devkit.bench.stats import rounded
from devkit.stack.stack import Stack
from voting import dynamodb
from voting.identity import VoterKeys
from voting.kafka import KafkaClients, read_log
from voting.readmodel import ACTIVE_KEY, DEFAULT_NAMESPACE, Keys
from voting.redis import text
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import command_service_pb2_grpc, query_service_pb2_grpc
from voting.v1 import query_service_pb2 as q

OPTIONS = ("o0", "o1", "o2")
SERVICES = ("command", "worker", "projector", "query", "gateway")
EXTRAS = {"command-2": "command-svc", "worker-2": "worker"}
TARGETS = (
    "command",
    "command-2",
    "worker",
    "worker-2",
    "projector",
    "query",
    "gateway",
    "redis",
    "dynamodb",
    "kafka",
)
# The local broker keeps its log in memory: a kill loses every topic by construction, so
# it is only paused (see README, Guarantees).
KINDS: dict[str, tuple[Kind, ...]] = {
    t: ("pause",) if t == "kafka" else ("kill", "pause") for t in TARGETS
}
Inject = Literal["", "miscount"]


@dataclass(frozen=True)
class ChaosProfile:
    name: str
    rounds: int  # every (kind, target) this many times
    extra: int  # plus this many faults drawn at random
    gap_s: tuple[float, float] = (2.0, 6.0)
    load_fraction: float = 0.6  # of the end-to-end capacity measured first
    calibrate_s: float = 14.0
    min_rate: float = 150.0
    batch: int = 20
    lanes: int = 2
    unary_lanes: int = 2
    repeat_ratio: float = 0.15
    short_deadline_ratio: float = 0.03
    settle_s: float = 5.0

    def planned_s(self, schedule: Schedule) -> float:
        return 60 + self.calibrate_s + schedule.span_s + self.settle_s + 60


PROFILES = {
    # The checker on a calm run (and the run `devkit chaos` must fail when a miscount is
    # injected).
    "smoke": ChaosProfile("smoke", rounds=0, extra=0, calibrate_s=5.0),
    # Inside `make test`: eight faults drawn at random, a kill and a pause among them.
    "short": ChaosProfile("short", rounds=0, extra=8, gap_s=(2.0, 5.0)),
    # Every target killed and paused once.
    "quick": ChaosProfile("quick", rounds=1, extra=0),
    # `make chaos`: a 20-minute soak, every target killed and paused eight times.
    "standard": ChaosProfile("standard", rounds=8, extra=0, gap_s=(3.0, 9.0)),
}


def run(
    *,
    profile: str = "quick",
    seed: int | None = None,
    json_path: Path | None = None,
    inject: Inject = "",
) -> dict[str, Any]:
    chosen = PROFILES[profile]
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    schedule = Schedule.draw(
        seed,
        targets=TARGETS,
        kinds=KINDS,
        rounds=chosen.rounds,
        extra=chosen.extra,
        gap_s=chosen.gap_s,
    )
    replay = f"devkit chaos --profile {profile} --seed {seed}"
    print(
        f"devkit chaos: seed {seed} ({len(schedule.faults)} faults); replay: {replay}",
        file=sys.stderr,
        flush=True,
    )
    progress = Progress(chosen.planned_s(schedule))
    progress.show("starting the local stack")
    target = json_path or RESULTS / f"chaos-{profile}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    with private_stack(services=SERVICES, ephemeral=False) as stack:
        for name, command in EXTRAS.items():
            stack.start_extra(name, command)
        chaos = Chaos(stack, chosen, schedule, progress)
        figures, history = chaos.run(inject=inject)
        if figures["violations"]:  # the processes' logs, for whoever investigates
            shutil.copytree(stack.log_dir, target.with_suffix(".logs"), dirs_exist_ok=True)
    progress.done()
    result = {
        "benchmark": "chaos",
        "seed": seed,
        "replay": replay,
        "profile": asdict(chosen),
        "machine": machine(),
        "injected": inject or None,
        **figures,
    }
    result["ok"] = not result["violations"]
    write_json(result, target)
    result["json"] = str(target)
    if not result["ok"]:
        saved = target.with_suffix(".history.jsonl.gz")
        with gzip.open(saved, "wt") as out:
            for line in history:
                out.write(json.dumps(line) + "\n")
        result["history"] = str(saved)
        result["logs"] = str(target.with_suffix(".logs"))
        write_json(result, target)
    return result


class Chaos:
    def __init__(
        self, stack: Stack, profile: ChaosProfile, schedule: Schedule, progress: Progress
    ) -> None:
        self.stack = stack
        self.profile = profile
        self.schedule = schedule
        self.progress = progress
        self.settings = stack.settings()
        self.reads: list[tuple[float, bool]] = []
        self.counted = 0
        self.dead_letters: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, *, inject: Inject) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        profile = self.profile
        closed_early, closed_late = create_polls(self.settings, 2, len(OPTIONS), prefix="chaos")
        polls = [closed_early, closed_late]
        targets = [self.settings.command.listen, self._listen("command-2")]
        load = VoteLoad(
            targets,
            LoadSpec(
                polls=list(polls),
                options=OPTIONS,
                batch=profile.batch,
                lanes=profile.lanes,
                unary_lanes=profile.unary_lanes,
                repeat_ratio=profile.repeat_ratio,
                short_deadline_ratio=profile.short_deadline_ratio,
                timeout_s=10.0,
                retry_budget_s=180.0,
                history=True,
            ),
            seed=self.schedule.seed,
        )
        started = time.monotonic()
        driver = threading.Thread(target=self._drive, args=(load, polls), daemon=True)
        driver.start()

        capacity = self._calibrate(load)
        rate = max(profile.min_rate, profile.load_fraction * capacity)
        load.set_rate(rate)
        load.gate = lambda: True

        nemesis = Nemesis(self.stack, self.schedule)
        faults_started = time.monotonic()
        closer = threading.Thread(
            target=self._close_mid_run,
            args=(closed_early, load, faults_started + 0.6 * self.schedule.span_s),
            daemon=True,
        )
        closer.start()
        self.progress.show("faults", f"{len(self.schedule.faults)} scheduled at {rate:.0f} votes/s")
        nemesis.run(faults_started)
        closer.join()
        time.sleep(profile.settle_s)
        died = self._revive()
        self._stop.set()
        self.progress.show("faults done", "waiting for every vote to be settled")
        driver.join(400)
        self.progress.show("closing", "waiting for FINAL")
        finals = self._close_and_await_final(polls)
        if inject == "miscount":
            self._inject_miscount(polls)
        observed = self._observe(load, polls, finals)
        verdict = check(observed)
        record = load.record
        writes = [(c.ended, c.ok) for c in record.calls]
        write_down = down_windows(writes)
        read_down = down_windows(self.reads)
        violations = dict(verdict.violations)
        if nemesis.errors:
            violations["restart_failed"] = {
                "count": len(nemesis.errors),
                "examples": nemesis.errors,
            }
        if died:
            violations["died_by_itself"] = {"count": len(died), "examples": died}
        figures = {
            "capacity_votes_per_s": rounded(capacity),
            "load_votes_per_s": rounded(rate),
            "faults": sorted(nemesis.done, key=lambda f: f["at_s"]),
            **verdict.figures,
            "final_counts": {
                p: {c.option_id: c.votes for c in f.counts} if f else None
                for p, f in finals.items()
            },
            # Records the worker could not decide (each is a vote nobody counts).
            "dead_letters": len(self.dead_letters),
            "dead_letter_examples": self.dead_letters[:5],
            "attempts_failed": record.attempts_failed,
            "failure_codes": record.failure_codes,
            "write_unavailable_s": rounded(sum(b - a for a, b in write_down)),
            "read_unavailable_s": rounded(sum(b - a for a, b in read_down)),
            "reads_served_while_writes_down": sum(
                1 for at, ok in self.reads if ok and within(at, write_down)
            ),
            "writes_accepted_while_reads_down": sum(
                1 for ack in record.acks if within(ack.at, read_down)
            ),
            "reads": len(self.reads),
            "seconds": rounded(time.monotonic() - started),
            "violations": violations,
        }
        return figures, _history(load, started)

    def _revive(self) -> list[str]:
        """Processes that died by themselves during the run (nobody restarts them here as
        Kubernetes would): a violation; restarted so the rest can still be checked."""
        died = []
        for name, child in list(self.stack.children.items()):
            if not child.alive():
                died.append(f"{name} (exit {child.returncode})")
                self.stack.restart(name)
        return died

    def _listen(self, name: str) -> str:
        env = self.stack.children[name].spec.env
        return env["VOTING_COMMAND_LISTEN"]

    # -- load, reads and the running count (one event loop, on its own thread) ------------

    def _drive(self, load: VoteLoad, polls: list[str]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            counter = asyncio.create_task(self._count(polls))
            reader = asyncio.create_task(self._read(polls[-1]))
            try:
                await load.run(self._stop.is_set)
            finally:
                counter.cancel()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await counter
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

        asyncio.run(main())

    async def _count(self, polls: list[str]) -> None:
        client = aioredis.from_url(self.settings.redis.url, socket_timeout=1.0)
        try:
            while True:
                try:
                    keys = Keys(text(await client.get(ACTIVE_KEY)) or DEFAULT_NAMESPACE)
                    async with client.pipeline(transaction=False) as pipe:
                        for poll_id in polls:
                            pipe.hvals(keys.counts(poll_id))
                        values = await pipe.execute()
                    self.counted = sum(int(v) for vs in values for v in vs)
                except Exception:  # Redis may be down: the count waits for it
                    pass
                await asyncio.sleep(0.2)
        finally:
            await client.aclose()

    async def _read(self, poll_id: str) -> None:
        target = self.settings.query.listen
        async with grpc.aio.insecure_channel(target, options=CLIENT_OPTIONS) as channel:
            stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)
            while True:
                try:
                    await stub.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=1.0)
                    self.reads.append((time.monotonic(), True))
                except grpc.aio.AioRpcError:
                    self.reads.append((time.monotonic(), False))
                await asyncio.sleep(0.1)

    def _calibrate(self, load: VoteLoad) -> float:
        """Accepted votes counted per second, flat out with a bounded backlog: the best
        4-second window of the measurement (the box is noisy, and a window that caught a
        rebalance or a GC pause says nothing about what the pipeline can do)."""
        load.gate = lambda: load.record.accepted_expected - self.counted <= 2000
        warm = time.monotonic() + 30
        while self.counted < 500 and time.monotonic() < warm:  # every partition working
            time.sleep(0.2)
        samples = [(time.monotonic(), self.counted)]
        while samples[-1][0] - samples[0][0] < self.profile.calibrate_s:
            time.sleep(0.5)
            samples.append((time.monotonic(), self.counted))
            self.progress.show("measuring capacity", f"{self.counted} counted")
        rates = [
            (c1 - c0) / (t1 - t0)
            for i, (t0, c0) in enumerate(samples)
            for t1, c1 in samples[i + 1 :]
            if 4.0 <= t1 - t0 < 4.5
        ]
        return max(rates, default=0.0)

    # -- polls ----------------------------------------------------------------------------

    def _close_mid_run(self, poll_id: str, load: VoteLoad, at: float) -> None:
        """Closes a poll while votes for it are in flight; clients keep voting in it for a
        few seconds more (refused from then on), then stop."""
        time.sleep(max(0.0, at - time.monotonic()))
        self._close(poll_id)
        time.sleep(3.0)
        load.spec.polls = [p for p in load.spec.polls if p != poll_id]

    def _close(self, poll_id: str) -> None:
        deadline = time.monotonic() + 300
        with grpc.insecure_channel(self.settings.command.listen, options=CLIENT_OPTIONS) as cc:
            commands: Any = command_service_pb2_grpc.CommandServiceStub(cc)
            while True:
                try:
                    commands.ClosePoll(
                        cmd.ClosePollRequest(request_id=f"close-{poll_id}", poll_id=poll_id),
                        timeout=10,
                    )
                    return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

    def _close_and_await_final(self, polls: list[str]) -> dict[str, Any]:
        for poll_id in polls:
            self._close(poll_id)
        finals: dict[str, Any] = dict.fromkeys(polls)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for poll_id in polls:
                if finals[poll_id] is None or not finals[poll_id].final:
                    finals[poll_id] = _results(self.settings.query.listen, poll_id)
            if all(f is not None and f.final for f in finals.values()):
                break
            time.sleep(0.5)
        return finals

    # -- what the stores hold -------------------------------------------------------------

    def _observe(self, load: VoteLoad, polls: list[str], finals: dict[str, Any]) -> Observed:
        self.progress.show("checking", "reading the log, DynamoDB and every vote's status")
        topics = self.settings.topics
        kafka = KafkaClients(self.settings.kafka, topics)
        votes_log = read_log(kafka, topics.votes, topics.partitions, timeout_s=300)
        decisions_log = read_log(kafka, topics.vote_results, topics.partitions, timeout_s=300)
        self.dead_letters = [
            {h: v.decode(errors="replace") for h, v in r.headers if h.startswith("dlq-")}
            for r in read_log(kafka, topics.dead_letters, 1, timeout_s=60)
        ]
        ledger = [item for item in _ledger(self.settings) if item["poll_id"]["S"] in polls]
        acked = {
            a.vote_id: request.poll_id
            for request in load.record.requests.values()
            for a in request.attempts
            if a.code == "OK"
        }
        statuses = asyncio.run(_statuses(self.settings.query.listen, acked))
        return Observed(
            requests=load.record.requests,
            voter_keys=VoterKeys.from_settings(self.settings.security),
            votes_log=votes_log,
            decisions_log=decisions_log,
            ledger=ledger,
            finals=finals,
            options=OPTIONS,
            statuses=statuses,
        )

    def _inject_miscount(self, polls: list[str]) -> None:
        """Changes one counted vote's option in DynamoDB: the checker must catch it."""
        client = dynamodb.sync_client(self.settings.dynamodb)
        for item in _ledger(self.settings):
            if item["poll_id"]["S"] in polls:
                other = next(o for o in OPTIONS if o != item["option_id"]["S"])
                item["option_id"] = {"S": other}
                client.put_item(TableName=self.settings.dynamodb.votes_table, Item=item)
                return


def _results(target: str, poll_id: str) -> Any:
    with grpc.insecure_channel(target) as channel:
        queries: Any = query_service_pb2_grpc.QueryServiceStub(channel)
        try:
            return queries.GetResults(q.GetResultsRequest(poll_id=poll_id), timeout=10).results
        except grpc.RpcError:
            return None


def _ledger(settings: Any) -> list[dict[str, Any]]:
    client = dynamodb.sync_client(settings.dynamodb)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(
        TableName=settings.dynamodb.votes_table, ConsistentRead=True
    ):
        items.extend(page["Items"])
    return items


async def _statuses(target: str, votes: dict[str, str]) -> dict[str, tuple[int, int, str] | None]:
    found: dict[str, tuple[int, int, str] | None] = {}
    slots = asyncio.Semaphore(64)
    async with grpc.aio.insecure_channel(target, options=CLIENT_OPTIONS) as channel:
        stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)

        async def one(vote_id: str, poll_id: str) -> None:
            async with slots:
                for _ in range(5):
                    try:
                        reply = await stub.GetVoteStatus(
                            q.GetVoteStatusRequest(poll_id=poll_id, vote_id=vote_id), timeout=10
                        )
                        found[vote_id] = (reply.state, reply.reason, reply.option_id)
                        return
                    except grpc.aio.AioRpcError:
                        await asyncio.sleep(0.5)
                found[vote_id] = None

        await asyncio.gather(*(one(v, p) for v, p in votes.items()))
    return found


def _history(load: VoteLoad, started: float) -> list[dict[str, Any]]:
    return [
        {
            "request_id": r.request_id,
            "poll_id": r.poll_id,
            "voter_id": r.voter_id,
            "option_id": r.option_id,
            "outcome": r.outcome,
            "attempts": [
                [
                    round(a.started - started, 4),
                    round(a.ended - started, 4),
                    a.target,
                    a.code,
                    a.vote_id,
                    a.partition,
                    a.offset,
                ]
                for a in r.attempts
            ],
        }
        for r in load.record.requests.values()
    ]
