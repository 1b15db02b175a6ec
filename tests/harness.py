"""Test harness: isolated deployments of the real services on the session's real infrastructure.

Nothing here mocks Kafka, DynamoDB or Redis. A :class:`Deployment` is the whole system
with its own topics, tables, consumer groups, Redis database and ports, started as real
processes through the same :class:`devkit.stack.stack.Stack` that ``devkit up`` uses, so
tests can kill and restart any part of it.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import grpc
import redis

from devkit.keys import DEV_KEY_ID, development_keys
from devkit.stack.components import free_port
from devkit.stack.stack import Stack, StackOptions
from devkit.tokens import TokenIssuer, load_private_key
from voting import dynamodb, events
from voting.config import Settings
from voting.identity import VoterKeys
from voting.kafka import KafkaClients, LogRecord, read_log
from voting.readmodel import ACTIVE_KEY, DEFAULT_NAMESPACE, Keys
from voting.tls import sync_channel
from voting.v1 import (
    admin_service_pb2_grpc,
    command_service_pb2_grpc,
    events_pb2,
    poll_pb2,
    query_service_pb2_grpc,
)
from voting.v1 import (
    command_service_pb2 as cmd,
)

_redis_dbs = itertools.cycle(range(1, 16))


class Deployment:
    def __init__(
        self,
        infra: Stack,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        broker_shows_aborted_records: bool = True,
        auth: Literal["development", "jwt"] = "development",
        tls: Literal["off", "on", "mutual"] = "off",
    ) -> None:
        # Tansu shows records of aborted transactions to read_committed readers; real
        # Kafka hides them. Tests that prove we tolerate them can check they happened.
        self.broker_shows_aborted_records = broker_shows_aborted_records
        suffix = uuid.uuid4().hex[:8]
        self.suffix = suffix
        db = next(_redis_dbs)
        isolated = {
            "VOTING_TOPIC_VOTES": f"votes-{suffix}",
            "VOTING_TOPIC_VOTE_RESULTS": f"vote-results-{suffix}",
            "VOTING_TOPIC_POLLS": f"polls-{suffix}",
            "VOTING_TOPIC_DEDUP_CHANGELOG": f"changelog-{suffix}",
            "VOTING_TOPIC_DEAD_LETTERS": f"dead-letters-{suffix}",
            "VOTING_DYNAMODB_POLLS_TABLE": f"polls-{suffix}",
            "VOTING_DYNAMODB_VOTES_TABLE": f"votes-{suffix}",
            "VOTING_DYNAMODB_RESULTS_TABLE": f"results-{suffix}",
            "VOTING_DYNAMODB_CHECKPOINTS_TABLE": f"checkpoints-{suffix}",
            "VOTING_WORKER_GROUP": f"worker-{suffix}",
            "VOTING_PROJECTOR_GROUP": f"projector-{suffix}",
            "VOTING_REDIS_URL": infra.settings().redis.url.rsplit("/", 1)[0] + f"/{db}",
            **(env or {}),
        }
        options = replace(
            infra.options,
            data_dir=data_dir,
            command_port=free_port(),
            query_port=free_port(),
            worker_port=free_port(),
            projector_port=free_port(),
            gateway_port=free_port(),
            metrics_ports={name: free_port() for name in infra.options.metrics_ports},
            env={**infra.options.env, **isolated},
            auth=auth,
            tls=tls,
        )
        self.stack = Stack(options)
        self.settings = self.stack.settings()
        self.kafka = KafkaClients(self.settings.kafka, self.settings.topics)
        self.redis = redis.Redis.from_url(self.settings.redis.url)
        self.redis.flushdb()
        self.stack.provision()
        self.voter_keys = VoterKeys.from_settings(self.settings.security)
        self._channels: dict[str, grpc.Channel] = {}
        self.decision_records = 0
        self._issuer = TokenIssuer(
            load_private_key(development_keys(data_dir / "keys").token_private.read_bytes()),
            kid=DEV_KEY_ID,
            issuer=self.settings.auth.jwt_issuer,
            audience=self.settings.auth.jwt_audience,
        )

    def token(
        self, subject: str, *scopes: str, ttl_s: float = 600, now: float | None = None
    ) -> str:
        """A token signed with this deployment's development key."""
        return self._issuer.issue(subject, list(scopes), ttl_s=ttl_s, now=now)

    @staticmethod
    def bearer(token: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")]

    # -- processes -------------------------------------------------------------------------

    def start(self, *names: str, env: dict[str, str] | None = None) -> None:
        self.stack.start_services(names or None, env=env)

    def start_extra(self, name: str, command: str, *, env: dict[str, str] | None = None) -> int:
        """Another process of ``command`` (e.g. a second worker, or a command service
        with other settings) on its own port; returns the port."""
        return self.stack.start_extra(name, command, env=env)

    def start_extra_worker(self, name: str) -> None:
        """A second worker process in the same group, on its own health port."""
        self.start_extra(name, "worker")

    def stub_at(self, port: int, stub: Any) -> Any:
        key = f"port-{port}"
        if key not in self._channels:
            self._channels[key] = sync_channel(f"127.0.0.1:{port}", self.settings.tls)
        return stub(self._channels[key])

    def log_count(self, name: str, text: str) -> int:
        path = self.stack.log_dir / f"{name}.log"
        return path.read_text(errors="replace").count(text) if path.exists() else 0

    def wait_for_log(self, name: str, text: str, *, more_than: int, timeout_s: float = 60) -> None:
        wait_until(
            lambda: self.log_count(name, text) > more_than,
            timeout_s=timeout_s,
            what=f"{text!r} in {name}.log",
        )

    def wait_until_working(self, name: str, timeout_s: float = 60) -> None:
        """Waits until the current incarnation of ``name`` owns partitions."""

        def assigned() -> bool:
            path = self.stack.log_dir / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            return '"assigned"' in text[text.rfind(f"start {name}\n") :]

        wait_until(assigned, timeout_s=timeout_s, what=f"{name} to own partitions")

    def kill(self, name: str) -> None:
        self.stack.kill(name)

    def restart(self, name: str, *, env: dict[str, str] | None = None) -> None:
        self.stack.restart(name, env=env)

    def alive(self, name: str) -> bool:
        return self.stack.children[name].alive()

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self.stack.stop(grace_s=5)
        self.redis.close()

    # -- clients ---------------------------------------------------------------------------

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            port = getattr(self.stack.options, f"{service}_port")
            self._channels[service] = sync_channel(f"127.0.0.1:{port}", self.settings.tls)
        return self._channels[service]

    @property
    def commands(self) -> Any:
        return command_service_pb2_grpc.CommandServiceStub(self.channel("command"))

    @property
    def queries(self) -> Any:
        return query_service_pb2_grpc.QueryServiceStub(self.channel("query"))

    @property
    def admin(self) -> Any:
        return admin_service_pb2_grpc.AdminServiceStub(self.channel("projector"))

    def create_poll(
        self, poll_id: str | None = None, options: Iterable[str] = ("a", "b", "c"), **kw: Any
    ) -> str:
        poll_id = poll_id or f"poll-{uuid.uuid4().hex[:10]}"
        self.commands.CreatePoll(
            cmd.CreatePollRequest(
                request_id=f"create-{poll_id}",
                poll_id=poll_id,
                title=f"Poll {poll_id}",
                options=[poll_pb2.PollOption(option_id=o, label=o.upper()) for o in options],
                **kw,
            ),
            timeout=30,
            metadata=self.admin_metadata(),
        )
        return poll_id

    def admin_metadata(self) -> list[tuple[str, str]] | None:
        """An admin's bearer token when the deployment checks tokens."""
        return (
            self.bearer(self.token("operator", "admin"))
            if self.settings.auth.mode == "jwt"
            else None
        )

    # -- reading the stores ----------------------------------------------------------------

    def read_topic(self, topic: str, *, partitions: int | None = None) -> list[LogRecord]:
        """Every record of ``topic`` up to the end of each partition (read_committed)."""
        count = partitions if partitions is not None else self._partitions(topic)
        return read_log(self.kafka, topic, count, timeout_s=60)

    def _partitions(self, topic: str) -> int:
        t = self.settings.topics
        return {t.polls: t.polls_partitions, t.dead_letters: 1}.get(topic, t.partitions)

    def decisions(self) -> dict[str, set[tuple[str, int]]]:
        """vote id -> distinct decisions seen in vote-results (aborted copies included)."""
        found: dict[str, set[tuple[str, int]]] = defaultdict(set)
        records = self.read_topic(self.settings.topics.vote_results)
        self.decision_records = len(records)
        for record in records:
            event = record.event()
            if isinstance(event, events_pb2.VoteAccepted):
                found[event.vote_id].add(("accepted", 0))
            elif isinstance(event, events_pb2.VoteRejected):
                found[event.vote_id].add(("rejected", event.reason))
        return found

    def ledger_items(self) -> list[dict[str, Any]]:
        client = dynamodb.sync_client(self.settings.dynamodb)
        items: list[dict[str, Any]] = []
        for page in client.get_paginator("scan").paginate(
            TableName=self.settings.dynamodb.votes_table
        ):
            items.extend(page["Items"])
        return items

    def poll_items(self) -> list[dict[str, Any]]:
        client = dynamodb.sync_client(self.settings.dynamodb)
        return list(client.scan(TableName=self.settings.dynamodb.polls_table)["Items"])

    def namespace(self) -> str:
        active = self.redis.get(ACTIVE_KEY)
        return active.decode() if isinstance(active, bytes) else DEFAULT_NAMESPACE

    @property
    def keys(self) -> Keys:
        """The live read model's keys."""
        return Keys(self.namespace())

    def redis_counts(self, poll_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self.keys.counts(poll_id))
        return {k.decode(): int(v) for k, v in raw.items()}  # type: ignore[union-attr]


@dataclass
class Ack:
    vote_id: str
    poll_id: str
    voter_id: str
    option_id: str
    partition: int
    offset: int


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


@dataclass
class VoteLoad:
    """Casts votes in batches from a thread until stopped, remembering every acknowledgement.

    About ``repeat_ratio`` of the votes come from voters who already voted (with another
    request id, so they are new votes the worker must reject as duplicates).
    """

    deployment: Deployment
    poll_id: str
    options: tuple[str, ...] = ("a", "b", "c")
    batch: int = 50
    repeat_ratio: float = 0.1
    pause_s: float = 0.02
    attempts: int = 5
    acks: list[Ack] = field(default_factory=list)
    failures: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, to say what failed
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _voters: int = 0

    def start(self) -> VoteLoad:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Ack]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return self.acks

    def send_batch(self) -> None:
        rng = random.Random()
        requests = []
        for _ in range(self.batch):
            if self._voters and rng.random() < self.repeat_ratio:
                voter = f"voter-{rng.randrange(self._voters)}"
            else:
                voter = f"voter-{self._voters}"
                self._voters += 1
            requests.append(
                cmd.CastVoteRequest(
                    request_id=uuid.uuid4().hex,
                    poll_id=self.poll_id,
                    voter_id=voter,
                    option_id=rng.choice(self.options),
                )
            )
        # As a client would: what may pass is retried with the same request ids, so each
        # retry gets the first answer; a failure is a vote never acknowledged.
        pending = requests
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(0.1 * 2**attempt, 2.0))
            try:
                reply = self.deployment.commands.CastVotes(
                    cmd.CastVotesRequest(requests=pending), timeout=20
                )
            except grpc.RpcError as error:
                self._note(f"CastVotes: {error.code().name}: {error.details()}")
                if error.code() not in _RETRYABLE:
                    break
                continue
            again = []
            for request, result in zip(pending, reply.results, strict=True):
                if result.status.code == 0:
                    position = result.response.consistency_token.position
                    self.acks.append(
                        Ack(
                            result.response.vote_id,
                            request.poll_id,
                            request.voter_id,
                            request.option_id,
                            position.partition,
                            position.offset,
                        )
                    )
                    continue
                code = _CODE_NAMES[result.status.code]
                self._note(f"vote: {code}: {result.status.message}")
                if code in {c.name for c in _RETRYABLE}:
                    again.append(request)
                else:
                    self.failures += 1
            pending = again
            if not pending:
                return
        self.failures += len(pending)

    def _note(self, error: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {error}")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.send_batch()
            time.sleep(self.pause_s)


def first_votes(acks: Iterable[Ack]) -> dict[tuple[str, str], Ack]:
    """Each voter's first acknowledged vote per poll: the one earliest in its partition."""
    first: dict[tuple[str, str], Ack] = {}
    for ack in acks:
        key = (ack.poll_id, ack.voter_id)
        if key not in first or ack.offset < first[key].offset:
            first[key] = ack
    return first


def wait_until(
    predicate: Any, *, timeout_s: float, interval_s: float = 0.25, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def infra_options(data_dir: Path) -> StackOptions:
    return StackOptions.on_free_ports(data_dir=data_dir, ephemeral=True, partitions=4)


def settings_of(deployment: Deployment) -> Settings:
    return deployment.settings


@contextlib.contextmanager
def paused(stack: Stack, name: str) -> Iterator[None]:
    """SIGSTOP a component's whole process group for the block, then SIGCONT: a pause
    (GC, VM migration, overloaded host) rather than a crash."""
    child = stack.children[name]
    child.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        child.signal(signal.SIGCONT)


def cast(
    stub: Any,
    poll_id: str,
    voter_id: str,
    option_id: str = "a",
    *,
    request_id: str = "",
    timeout_s: float = 10,
) -> cmd.CastVoteResponse:
    reply: cmd.CastVoteResponse = stub.CastVote(
        cmd.CastVoteRequest(
            request_id=request_id, poll_id=poll_id, voter_id=voter_id, option_id=option_id
        ),
        timeout=timeout_s,
    )
    return reply


def append_vote_record(deployment: Deployment, vote: events_pb2.VoteCast) -> None:
    """Appends a VoteCast exactly as the command service does (same key, headers and
    partitioner): what a command process with a stale poll model would append."""
    producer = deployment.kafka.producer(client_id=f"test-{uuid.uuid4().hex[:6]}")
    value, headers = events.encode(vote)
    producer.produce(
        deployment.settings.topics.votes,
        value,
        f"{vote.poll_id}/{vote.voter_key}".encode(),
        headers=headers,
    )
    assert producer.flush(30) == 0, "the broker did not take the record"


def results_of(deployment: Deployment, poll_id: str, **request: Any) -> Any:
    """The poll's current Results, or None while the read side does not answer for it
    (the poll not projected yet, the query service restarting)."""
    from voting.v1 import query_service_pb2

    try:
        return deployment.queries.GetResults(
            query_service_pb2.GetResultsRequest(poll_id=poll_id, **request), timeout=10
        ).results
    except grpc.RpcError:
        return None


def await_final(deployment: Deployment, poll_id: str, *, timeout_s: float = 90) -> Any:
    """Waits for the poll's FINAL results and returns them."""
    found: list[Any] = []

    def final() -> bool:
        results = results_of(deployment, poll_id)
        found[:] = [results]
        return results is not None and bool(results.final)

    wait_until(final, timeout_s=timeout_s, what=f"FINAL results of {poll_id}")
    return found[0]
