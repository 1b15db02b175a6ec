"""Typed configuration, read from documented environment variables.

Every setting is a dataclass field declared with :func:`setting`, which names its
environment variable and documents it; ``voting config`` prints them all. The same
variables configure the local stack and production: only their values differ.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin

from voting.errors import ConfigError

T = TypeVar("T")

Environment = Literal["production", "development"]


def setting(env: str, default: Any, doc: str) -> Any:
    """A configuration field read from ``env``; ``doc`` says what it does."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"env": env, "doc": doc})
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    bootstrap_servers: str = setting(
        "VOTING_KAFKA_BOOTSTRAP_SERVERS",
        "127.0.0.1:9092",
        "Kafka bootstrap servers, comma separated.",
    )
    client_config: dict[str, str] = setting(
        "VOTING_KAFKA_CLIENT_CONFIG",
        {},
        "Extra librdkafka settings for every client, as a JSON object "
        '(e.g. {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}).',
    )
    replication_factor: int = setting(
        "VOTING_KAFKA_REPLICATION_FACTOR",
        1,
        "Replication factor of topics created by `voting init`.",
    )
    # Every member of a consumer group must use the same timeouts, or a member can wait
    # forever for a rebalance; hence one setting for all groups.
    session_timeout_ms: int = setting(
        "VOTING_KAFKA_SESSION_TIMEOUT_MS", 6000, "Consumer group session timeout."
    )
    heartbeat_interval_ms: int = setting(
        "VOTING_KAFKA_HEARTBEAT_INTERVAL_MS", 500, "Consumer group heartbeat interval."
    )
    max_poll_interval_ms: int = setting(
        "VOTING_KAFKA_MAX_POLL_INTERVAL_MS",
        10000,
        "Longest pause between polls before a consumer leaves its group.",
    )
    fetch_wait_max_ms: int = setting(
        "VOTING_KAFKA_FETCH_WAIT_MAX_MS",
        10,
        "Longest a fetch waits for data (adds to every hop's latency).",
    )


@dataclass(frozen=True, kw_only=True)
class TopicSettings:
    votes: str = setting(
        "VOTING_TOPIC_VOTES", "votes", "Topic of VoteCast events and close markers."
    )
    vote_results: str = setting(
        "VOTING_TOPIC_VOTE_RESULTS", "vote-results", "Topic of the dedup worker's decisions."
    )
    polls: str = setting("VOTING_TOPIC_POLLS", "polls", "Topic of poll lifecycle events.")
    dedup_changelog: str = setting(
        "VOTING_TOPIC_DEDUP_CHANGELOG",
        "vote-dedup-changelog",
        "Changelog of the dedup worker's state (compacted on real Kafka).",
    )
    dead_letters: str = setting(
        "VOTING_TOPIC_DEAD_LETTERS",
        "dead-letters",
        "Records no consumer could decode, with the reason.",
    )
    partitions: int = setting(
        "VOTING_PARTITIONS",
        8,
        "Partitions of `votes`; `vote-results` and the changelog get the same number. "
        "Fixed for a topic's life: the worker pairs partitions by number.",
    )
    polls_partitions: int = setting("VOTING_POLLS_PARTITIONS", 1, "Partitions of `polls`.")


@dataclass(frozen=True, kw_only=True)
class DynamoDBSettings:
    endpoint_url: str = setting(
        "VOTING_DYNAMODB_ENDPOINT_URL", "", "DynamoDB endpoint; empty for AWS (region endpoint)."
    )
    region: str = setting("VOTING_DYNAMODB_REGION", "us-east-1", "AWS region.")
    access_key_id: str = setting(
        "VOTING_DYNAMODB_ACCESS_KEY_ID",
        "",
        "Explicit access key (e.g. for DynamoDB Local); empty uses the AWS default chain "
        "(environment, IAM role for service accounts, instance profile).",
    )
    secret_access_key: str = setting(
        "VOTING_DYNAMODB_SECRET_ACCESS_KEY", "", "Secret of VOTING_DYNAMODB_ACCESS_KEY_ID."
    )
    polls_table: str = setting("VOTING_DYNAMODB_POLLS_TABLE", "polls", "Table of polls.")
    votes_table: str = setting(
        "VOTING_DYNAMODB_VOTES_TABLE", "votes", "Table of accepted votes: the source of truth."
    )
    results_table: str = setting(
        "VOTING_DYNAMODB_RESULTS_TABLE", "results", "Table of final tallies written by the recount."
    )
    checkpoints_table: str = setting(
        "VOTING_DYNAMODB_CHECKPOINTS_TABLE",
        "checkpoints",
        "Table of the dedup worker's changelog checkpoints (where each partition's restore "
        "starts).",
    )
    ledger_shards: int = setting(
        "VOTING_LEDGER_SHARDS",
        16,
        "Shards a new poll's votes are spread over in the votes table (each shard is one "
        "partition key, ~1000 writes/s on AWS). Fixed per poll at creation.",
    )
    max_pool_connections: int = setting(
        "VOTING_DYNAMODB_MAX_POOL_CONNECTIONS", 64, "HTTP connections per DynamoDB client."
    )
    request_timeout_s: float = setting(
        "VOTING_DYNAMODB_REQUEST_TIMEOUT_S",
        2.0,
        "Longest a request waits for one DynamoDB call (retries included) before it fails "
        "with UNAVAILABLE: a store that does not answer must not hold calls to their deadline.",
    )


@dataclass(frozen=True, kw_only=True)
class RedisSettings:
    url: str = setting("VOTING_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis of the read model.")
    socket_timeout_s: float = setting(
        "VOTING_REDIS_SOCKET_TIMEOUT_S", 2.0, "Timeout of one Redis command."
    )


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Conventions shared by every gRPC server."""

    grace_s: float = setting(
        "VOTING_SHUTDOWN_GRACE_S", 10.0, "On SIGTERM, how long in-flight RPCs may take to finish."
    )
    max_message_bytes: int = setting(
        "VOTING_GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, "Largest gRPC message accepted or sent."
    )
    keepalive_time_s: float = setting(
        "VOTING_GRPC_KEEPALIVE_TIME_S", 30.0, "Server keepalive ping interval."
    )
    keepalive_timeout_s: float = setting(
        "VOTING_GRPC_KEEPALIVE_TIMEOUT_S", 10.0, "How long a keepalive ping may go unanswered."
    )
    request_read_timeout_s: float = setting(
        "VOTING_GRPC_REQUEST_READ_TIMEOUT_S",
        10.0,
        "How long a call may take to deliver its request message once it has started: a "
        "message cut short (a length prefix promising more bytes than come) then ends with "
        "DEADLINE_EXCEEDED instead of holding its memory forever.",
    )
    health_listen: str = setting(
        "VOTING_HEALTH_LISTEN",
        "",
        "Extra plaintext address serving only the gRPC health service, for probes that "
        "cannot speak TLS (Kubernetes gRPC probes), e.g. 0.0.0.0:8086; empty: none.",
    )
    max_concurrent_rpcs: int = setting(
        "VOTING_GRPC_MAX_CONCURRENT_RPCS",
        0,
        "Above this many RPCs in flight a server sheds load with RESOURCE_EXHAUSTED; 0 = no limit.",
    )


@dataclass(frozen=True, kw_only=True)
class CommandSettings:
    listen: str = setting(
        "VOTING_COMMAND_LISTEN", "127.0.0.1:50051", "Address of the CommandService."
    )
    poll_cache_ttl_s: float = setting(
        "VOTING_POLL_CACHE_TTL_S",
        1.0,
        "Bounded staleness of the poll model the command service validates votes against.",
    )
    poll_max_staleness_s: float = setting(
        "VOTING_POLL_MAX_STALENESS_S",
        60.0,
        "While DynamoDB does not answer, votes are validated against the last known poll "
        "model for at most this long (the close point itself is decided in the log).",
    )
    idempotency_ttl_s: float = setting(
        "VOTING_IDEMPOTENCY_TTL_S", 600.0, "How long a request id's acknowledgement is remembered."
    )
    idempotency_cache_size: int = setting(
        "VOTING_IDEMPOTENCY_CACHE_SIZE", 200_000, "Request ids remembered per process."
    )
    max_batch: int = setting("VOTING_MAX_VOTES_PER_BATCH", 1000, "Most votes in one CastVotes.")
    cast_vote_linger_ms: float = setting(
        "VOTING_CAST_VOTE_LINGER_MS",
        2.0,
        "Concurrent CastVote calls of one caller arriving within this long are cast as one "
        "batch (one Redis and broker round for all); 0 casts each alone.",
    )
    max_inflight_votes: int = setting(
        "VOTING_MAX_INFLIGHT_VOTES",
        100_000,
        "Votes awaiting the broker's acknowledgement above which new votes are shed with "
        "RESOURCE_EXHAUSTED.",
    )
    produce_timeout_s: float = setting(
        "VOTING_PRODUCE_TIMEOUT_S",
        10.0,
        "How long a vote may wait for the broker's acknowledgement before UNAVAILABLE.",
    )


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    group_id: str = setting(
        "VOTING_WORKER_GROUP",
        "dedup-worker",
        "Consumer group (and transactional id prefix) of the worker.",
    )
    health_listen: str = setting(
        "VOTING_WORKER_HEALTH_LISTEN",
        "127.0.0.1:50053",
        "Address of the worker's gRPC health service.",
    )
    batch_max: int = setting(
        "VOTING_WORKER_BATCH_MAX",
        500,
        "Most records taken per loop (one transaction per partition): larger batches "
        "amortize the fixed cost of a transaction, smaller ones decide sooner.",
    )
    dynamodb_concurrency: int = setting(
        "VOTING_WORKER_DYNAMODB_CONCURRENCY",
        8,
        "DynamoDB write requests in flight per worker (transactions of up to 100 votes, or "
        "single puts in `put` mode, where 64 suits better).",
    )
    changelog_rewrite_min: int = setting(
        "VOTING_WORKER_CHANGELOG_REWRITE_MIN",
        100_000,
        "A partition's live state is rewritten as a checkpoint once its changelog holds more "
        "than this many records since the last one, and more than twice what is live: a "
        "restore then reads about what is live, never the whole history.",
    )
    ledger_barrier: bool = setting(
        "VOTING_LEDGER_BARRIER",
        False,
        "After a batch's ledger transactions, write one PutItem and await it before the "
        "batch commits. Only for DynamoDB Local, which acknowledges a TransactWriteItems "
        "before it is on disk (a kill -9 within about a second loses it; its PutItems are "
        "durable when acknowledged and come after what it acknowledged before). AWS needs "
        "no barrier.",
    )
    ledger_writes: Literal["transact", "put"] = setting(
        "VOTING_LEDGER_WRITES",
        "transact",
        "How accepted votes are written: `transact` (conditional TransactWriteItems of up "
        "to 100; fewest requests) or `put` (conditional PutItem each; half the WCU on AWS).",
    )


@dataclass(frozen=True, kw_only=True)
class ProjectorSettings:
    group_id: str = setting(
        "VOTING_PROJECTOR_GROUP", "projector", "Consumer group of the projector."
    )
    listen: str = setting(
        "VOTING_PROJECTOR_LISTEN",
        "127.0.0.1:50054",
        "Address of the projector's gRPC server (health and AdminService).",
    )
    batch_max: int = setting(
        "VOTING_PROJECTOR_BATCH_MAX", 5000, "Most records applied in one batch."
    )
    vote_status_ttl_s: int = setting(
        "VOTING_VOTE_STATUS_TTL_S",
        3600,
        "How long a vote's decision stays queryable by GetVoteStatus. Memory is about "
        "decisions/s x this x 230 bytes (`devkit bench memory`).",
    )


@dataclass(frozen=True, kw_only=True)
class QuerySettings:
    listen: str = setting("VOTING_QUERY_LISTEN", "127.0.0.1:50052", "Address of the QueryService.")
    max_updates_per_second: float = setting(
        "VOTING_WATCH_MAX_UPDATES_PER_S", 10.0, "Most WatchResults updates per poll per second."
    )
    consistency_wait_max_s: float = setting(
        "VOTING_CONSISTENCY_WAIT_MAX_S",
        30.0,
        "Longest a query waits for a ConsistencyToken's position, whatever the call's "
        "deadline (none included); then DEADLINE_EXCEEDED (or PENDING for a vote's status).",
    )


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    listen: str = setting(
        "VOTING_GATEWAY_LISTEN",
        "127.0.0.1:8080",
        "Address (host:port) of the HTTP gateway: the results page and its JSON/SSE API.",
    )
    query_target: str = setting(
        "VOTING_GATEWAY_QUERY_TARGET",
        "",
        "QueryService the gateway reads from; empty: VOTING_QUERY_LISTEN.",
    )
    heartbeat_s: float = setting(
        "VOTING_GATEWAY_HEARTBEAT_S",
        15.0,
        "Seconds between SSE heartbeat comments on a quiet stream (keeps proxies from closing it).",
    )
    token: str = setting(
        "VOTING_GATEWAY_TOKEN",
        "",
        "The gateway's own bearer token for the WatchResults streams it shares between "
        "browsers (scope `read:*` to serve private polls); each browser's access is still "
        "checked with its own token.",
    )
    cors_origins: tuple[str, ...] = setting(
        "VOTING_GATEWAY_CORS_ORIGINS",
        (),
        "Origins allowed to call the API from a browser, comma separated "
        "(e.g. https://example.org); `*` allows any; empty: none.",
    )
    max_followers: int = setting(
        "VOTING_GATEWAY_MAX_FOLLOWERS",
        20_000,
        "SSE streams one gateway process serves at most; beyond, 503 with Retry-After, so "
        "the load balancer sends the browser to another process. Each one holds a file "
        "descriptor: keep it under the process's open-file limit.",
    )
    listen_backlog: int = setting(
        "VOTING_GATEWAY_LISTEN_BACKLOG",
        4096,
        "Connections the kernel queues for the gateway before it accepts them (capped by "
        "net.core.somaxconn). aiohttp's default of 128 overflows when a crowd arrives at "
        "once, and each dropped SYN costs that browser a 1, 3, 7... s retransmission.",
    )
    results_max_age_s: int = setting(
        "VOTING_GATEWAY_RESULTS_MAX_AGE_S",
        1,
        "How long a CDN or browser may serve a poll's results without asking again while "
        "the poll is open (after FINAL: a day). 0: revalidate every time.",
    )


@dataclass(frozen=True, kw_only=True)
class SecuritySettings:
    environment: Environment = setting(
        "VOTING_ENVIRONMENT",
        "production",
        "`development` allows the development authorizer and built-in development secrets; "
        "never set it in production.",
    )
    voter_key_secret: str = setting(
        "VOTING_VOTER_KEY_SECRET",
        "",
        "Secret of the keyed hash that replaces voter ids outside the command service. "
        "Required in production; changing it splits every voter in two.",
    )

    @property
    def development(self) -> bool:
        return self.environment == "development"


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    mode: Literal["jwt", "development"] = setting(
        "VOTING_AUTH_MODE",
        "jwt",
        "How callers are authenticated: `jwt` (signed bearer tokens) or `development` "
        "(anyone may do anything; refused unless VOTING_ENVIRONMENT=development).",
    )
    jwt_public_keys: str = setting(
        "VOTING_JWT_PUBLIC_KEYS",
        "",
        "Token verification keys as a JSON object {kid: PEM public key} (Ed25519 or P-256).",
    )
    jwt_keys_dir: str = setting(
        "VOTING_JWT_KEYS_DIR",
        "",
        "Directory of `<kid>.pub.pem` token verification keys (e.g. a mounted secret).",
    )
    jwt_issuer: str = setting("VOTING_JWT_ISSUER", "voting", "Required `iss` of tokens.")
    jwt_audience: str = setting("VOTING_JWT_AUDIENCE", "voting", "Required `aud` of tokens.")
    jwt_leeway_s: float = setting(
        "VOTING_JWT_LEEWAY_S",
        30.0,
        "Clock skew allowed when checking a token's `exp` and `iat`: a token is accepted up "
        "to this long after it expires.",
    )
    require_deadline: bool = setting(
        "VOTING_REQUIRE_DEADLINE",
        True,
        "Refuse commands sent without a deadline (INVALID_ARGUMENT): a call that may hang "
        "forever holds server resources forever.",
    )


@dataclass(frozen=True, kw_only=True)
class RateLimitSettings:
    voter_per_s: float = setting(
        "VOTING_RATE_VOTER_PER_S",
        1.0,
        "Votes a voter may cast per second, sustained (token bucket refill); 0: no limit.",
    )
    voter_burst: float = setting("VOTING_RATE_VOTER_BURST", 5.0, "Votes a voter may cast at once.")
    client_per_s: float = setting(
        "VOTING_RATE_CLIENT_PER_S",
        0.0,
        "Votes one authenticated caller may send per second (a gateway sends for many "
        "voters); 0: no limit.",
    )
    client_burst: float = setting(
        "VOTING_RATE_CLIENT_BURST", 2000.0, "Votes one caller may send at once."
    )


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    cert: str = setting("VOTING_TLS_CERT", "", "Server certificate (PEM); empty: plaintext.")
    key: str = setting("VOTING_TLS_KEY", "", "Private key of VOTING_TLS_CERT (PEM).")
    ca: str = setting(
        "VOTING_TLS_CA",
        "",
        "CA bundle (PEM) clients verify servers with, and servers verify client certificates "
        "with under mutual TLS.",
    )
    client_auth: Literal["none", "require"] = setting(
        "VOTING_TLS_CLIENT_AUTH",
        "none",
        "`require`: mutual TLS, servers accept only clients with a certificate from VOTING_TLS_CA.",
    )
    client_cert: str = setting(
        "VOTING_TLS_CLIENT_CERT", "", "Certificate the services present as clients (mutual TLS)."
    )
    client_key: str = setting("VOTING_TLS_CLIENT_KEY", "", "Private key of VOTING_TLS_CLIENT_CERT.")


@dataclass(frozen=True, kw_only=True)
class ReceiptSettings:
    private_key_file: str = setting(
        "VOTING_RECEIPT_PRIVATE_KEY_FILE",
        "",
        "Ed25519 key (PEM) the command service signs vote receipts with; empty: no receipts.",
    )
    key_id: str = setting("VOTING_RECEIPT_KEY_ID", "r1", "Id of the receipt signing key.")
    public_keys: str = setting(
        "VOTING_RECEIPT_PUBLIC_KEYS",
        "",
        "Receipt verification keys as a JSON object {key id: PEM public key}.",
    )


@dataclass(frozen=True, kw_only=True)
class TelemetrySettings:
    log_level: str = setting(
        "VOTING_LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR."
    )
    faults: str = setting(
        "VOTING_FAULTS",
        "",
        "Fault injection for tests and chaos runs, e.g. `worker.before-commit=0.1`: the "
        "process exits as if killed at that point with that probability. Empty: off.",
    )
    metrics_listen: str = setting(
        "VOTING_METRICS_LISTEN",
        "",
        "Address of the process's Prometheus /metrics endpoint, e.g. 0.0.0.0:9100; empty: none.",
    )
    service_name: str = setting(
        "OTEL_SERVICE_NAME", "", "Service name in traces; empty: the process's own name."
    )
    otlp_endpoint: str = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "OTLP/gRPC collector (e.g. Jaeger's http://jaeger:4317); empty: no tracing. The "
        "other standard OTEL_* variables (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, "
        "OTEL_TRACES_SAMPLER_ARG, ...) are read by the OpenTelemetry SDK itself.",
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    dynamodb: DynamoDBSettings = field(default_factory=DynamoDBSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    command: CommandSettings = field(default_factory=CommandSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    projector: ProjectorSettings = field(default_factory=ProjectorSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    receipts: ReceiptSettings = field(default_factory=ReceiptSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return load(cls, os.environ if environ is None else environ)


def load(cls: type[T], environ: Mapping[str, str]) -> T:
    """Builds ``cls`` (a dataclass of settings or of sections) from ``environ``."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            values[f.name] = load(hint, environ)  # type: ignore[arg-type]
            continue
        env = f.metadata.get("env")
        if env is None or env not in environ:
            continue
        values[f.name] = _parse(environ[env], hint, env)
    return cls(**values)


def describe(cls: type[Any] = Settings) -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting, in declaration order."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(describe(hints[f.name]))
            continue
        factory: Any = f.default_factory
        default = f.default if f.default is not dataclasses.MISSING else factory()
        if isinstance(default, dict):
            shown = json.dumps(default)
        elif isinstance(default, tuple):
            shown = ",".join(default)
        else:
            shown = str(default)
        rows.append((f.metadata["env"], shown, f.metadata["doc"]))
    return rows


def _librdkafka_value(key: object, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        raise ValueError(f"{key}: expected a string, number or boolean")
    return str(value)


def _parse(raw: str, hint: Any, env: str) -> Any:
    origin = get_origin(hint)
    try:
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
        if origin is Literal:
            if raw not in get_args(hint):
                raise ValueError(f"{raw!r} is not one of {', '.join(map(str, get_args(hint)))}")
            return raw
        if origin is tuple and get_args(hint) == (str, ...):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if origin is dict:
            parsed = json.loads(raw) if raw.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError("expected a JSON object")
            return {str(k): _librdkafka_value(k, v) for k, v in parsed.items()}
        if origin in (types.UnionType, typing.Union):
            inner = [a for a in get_args(hint) if a is not type(None)]
            return None if raw == "" else _parse(raw, inner[0], env)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{env}: {exc}") from exc
    raise ConfigError(f"{env}: unsupported setting type {hint!r}")
