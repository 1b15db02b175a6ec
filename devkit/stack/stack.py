"""The local stack: real stand-ins for Kafka, DynamoDB and Redis, then the services.

``devkit up`` and the test harness both drive this class, so what the tests prove is
what users run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from devkit.keys import DEV_KEY_ID, development_keys
from devkit.pki import development_pki
from devkit.process import Child, spawn
from devkit.stack import components
from devkit.stack.components import Component, Probe
from devkit.stack.errors import StackError
from voting.config import Settings
from voting.errors import VotingError
from voting.provisioning import provision

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[2]


class ServiceEntry(NamedTuple):
    command: str  # of `python -m voting`
    port_option: str  # field of StackOptions
    probe: Probe = "grpc"


SERVICES: dict[str, ServiceEntry] = {
    "command": ServiceEntry("command-svc", "command_port"),
    "worker": ServiceEntry("worker", "worker_port"),
    "projector": ServiceEntry("projector", "projector_port"),
    "query": ServiceEntry("query-svc", "query_port"),
    "gateway": ServiceEntry("gateway", "gateway_port", probe="http"),
}
READY_TIMEOUT_S = {"kafka": 30.0, "dynamodb": 60.0, "redis": 15.0}
SERVICE_READY_TIMEOUT_S = 60.0
DEFAULT_METRICS_PORT_BASE = 19101


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    data_dir: Path = Path(".voting")
    kafka_port: int = 19092
    dynamodb_port: int = 18000
    redis_port: int = 16379
    command_port: int = 50051
    query_port: int = 50052
    worker_port: int = 50053
    projector_port: int = 50054
    gateway_port: int = 8080
    # Prometheus /metrics of each service.
    metrics_ports: dict[str, int] = field(
        default_factory=lambda: metrics_ports_from(DEFAULT_METRICS_PORT_BASE)
    )
    # OTLP/gRPC collector the services send traces to (e.g. Jaeger); empty: no tracing.
    otlp_endpoint: str = ""
    # `development`: anyone may do anything; `jwt`: development keys in <data_dir>/keys,
    # tokens from `devkit token issue`.
    auth: Literal["development", "jwt"] = "development"
    # TLS on every gRPC server with development certificates (<data_dir>/tls);
    # `mutual` makes servers require client certificates too.
    tls: Literal["off", "on", "mutual"] = "off"
    partitions: int = 4
    # In-memory DynamoDB and Redis without AOF: for tests, nothing survives a stop.
    ephemeral: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, **overrides: object) -> StackOptions:
        ports = {
            name: components.free_port()
            for name in (
                "kafka_port",
                "dynamodb_port",
                "redis_port",
                "command_port",
                "query_port",
                "worker_port",
                "projector_port",
                "gateway_port",
            )
        }
        metrics = {name: components.free_port() for name in SERVICES}
        return cls(**{**ports, "metrics_ports": metrics, **overrides})  # type: ignore[arg-type]


def metrics_ports_from(base: int) -> dict[str, int]:
    """The services' /metrics ports: ``base`` and the ports after it, one per service."""
    return {name: base + i for i, name in enumerate(SERVICES)}


def ports_of(options: StackOptions, *, infra_only: bool = False) -> dict[str, tuple[int, str]]:
    """Every port a stack binds, by what binds it, with the option that moves it."""
    wanted: dict[str, tuple[int, str]] = {
        name: (getattr(options, f"{name}_port"), f"--{name}-port")
        for name in ("kafka", "dynamodb", "redis")
    }
    if not infra_only:
        for name, entry in SERVICES.items():
            wanted[name] = (getattr(options, entry.port_option), f"--{name}-port")
        for name, port in options.metrics_ports.items():
            wanted[f"{name} metrics"] = (port, "--metrics-port-base")
    return wanted


class RestartBackoff:
    """How long to wait before restarting a process that died: doubling from
    ``initial_s`` to ``maximum_s`` while it keeps dying, back to ``initial_s`` once it
    has run for ``healthy_s``."""

    def __init__(
        self, *, initial_s: float = 1.0, maximum_s: float = 30.0, healthy_s: float = 60.0
    ) -> None:
        self._initial_s = initial_s
        self._maximum_s = maximum_s
        self._healthy_s = healthy_s
        self._delays: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def next_delay(self, name: str, *, now: float) -> float:
        last = self._delays.get(name)
        started = self._started.get(name)
        if started is not None and now - started >= self._healthy_s:
            last = None
        delay = self._initial_s if last is None else min(last * 2, self._maximum_s)
        self._delays[name] = delay
        return delay

    def started(self, name: str, *, now: float) -> None:
        self._started[name] = now


class Stack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.children: dict[str, Child] = {}
        self._components: dict[str, Component] = {}
        self.log_dir = options.data_dir / "logs"
        self._lock: TextIO | None = None

    # -- configuration -------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The VOTING_* environment that points any service or tool at this stack."""
        o = self.options
        return {
            "VOTING_ENVIRONMENT": "development",
            "VOTING_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{o.kafka_port}",
            "VOTING_DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{o.dynamodb_port}",
            "VOTING_REDIS_URL": f"redis://127.0.0.1:{o.redis_port}/0",
            "VOTING_COMMAND_LISTEN": f"127.0.0.1:{o.command_port}",
            "VOTING_QUERY_LISTEN": f"127.0.0.1:{o.query_port}",
            "VOTING_WORKER_HEALTH_LISTEN": f"127.0.0.1:{o.worker_port}",
            "VOTING_PROJECTOR_LISTEN": f"127.0.0.1:{o.projector_port}",
            "VOTING_GATEWAY_LISTEN": f"127.0.0.1:{o.gateway_port}",
            "VOTING_PARTITIONS": str(o.partitions),
            # DynamoDB Local accepts any credentials, boto refuses to sign without some.
            "VOTING_DYNAMODB_ACCESS_KEY_ID": "local",
            "VOTING_DYNAMODB_SECRET_ACCESS_KEY": "local",
            **({"OTEL_EXPORTER_OTLP_ENDPOINT": o.otlp_endpoint} if o.otlp_endpoint else {}),
            # grpcurl and friends send no deadline unless asked; production requires one.
            "VOTING_REQUIRE_DEADLINE": "false",
            **self._ledger_env(),
            **self._security_env(),
            **o.env,
        }

    def _ledger_env(self) -> dict[str, str]:
        """DynamoDB Local on disk acknowledges a TransactWriteItems before it is durable:
        a kill -9 within about a second of the reply loses it (measured), so a stack that
        keeps its data makes the worker confirm each batch's ledger writes (see
        VOTING_LEDGER_BARRIER)."""
        return {} if self.options.ephemeral else {"VOTING_LEDGER_BARRIER": "true"}

    def _security_env(self) -> dict[str, str]:
        """Development keys and certificates, made once under the data directory."""
        o = self.options
        keys = development_keys(o.data_dir / "keys")
        env = {
            "VOTING_AUTH_MODE": o.auth,
            "VOTING_RECEIPT_PRIVATE_KEY_FILE": str(keys.receipt_private),
            "VOTING_RECEIPT_KEY_ID": DEV_KEY_ID,
            "VOTING_RECEIPT_PUBLIC_KEYS": json.dumps({DEV_KEY_ID: keys.receipt_public.read_text()}),
        }
        if o.auth == "jwt":
            env["VOTING_JWT_PUBLIC_KEYS"] = json.dumps({DEV_KEY_ID: keys.token_public.read_text()})
        if o.tls != "off":
            env.update(development_pki(o.data_dir / "tls").env(mutual=o.tls == "mutual"))
        return env

    def settings(self) -> Settings:
        return Settings.from_env(self.env())

    def endpoints(self) -> dict[str, str]:
        env = self.env()
        return {
            "kafka": env["VOTING_KAFKA_BOOTSTRAP_SERVERS"],
            "dynamodb": env["VOTING_DYNAMODB_ENDPOINT_URL"],
            "redis": env["VOTING_REDIS_URL"],
            "command": env["VOTING_COMMAND_LISTEN"],
            "query": env["VOTING_QUERY_LISTEN"],
            "worker-health": env["VOTING_WORKER_HEALTH_LISTEN"],
            "admin (projector)": env["VOTING_PROJECTOR_LISTEN"],
            "gateway (web)": f"http://{env['VOTING_GATEWAY_LISTEN']}",
            "metrics": " ".join(
                f"{name}=http://127.0.0.1:{port}/metrics"
                for name, port in self.options.metrics_ports.items()
            ),
        }

    # -- lifecycle -----------------------------------------------------------------

    def start(self, *, infra_only: bool = False) -> None:
        """Starts infrastructure, creates topics and tables, then the services. Before
        anything starts, the data directory is locked for this stack and every port it
        needs is checked: all the taken ones are reported at once, by name."""
        self._lock_data_dir()
        self._check_free(ports_of(self.options, infra_only=infra_only))
        try:
            self.start_infra()
            if not infra_only:
                self.start_services()
        except BaseException:
            self.stop()
            raise

    def start_infra(self) -> None:
        data = self._prepare_data_dir()
        o = self.options
        infra = [
            components.broker(port=o.kafka_port, log_dir=self.log_dir),
            components.dynamodb(
                port=o.dynamodb_port,
                data_dir=None if o.ephemeral else data / "dynamodb",
                log_dir=self.log_dir,
                project_dirs=[Path.cwd(), PROJECT_DIR],
            ),
            components.redis(
                port=o.redis_port,
                data_dir=None if o.ephemeral else data / "redis",
                log_dir=self.log_dir,
            ),
        ]
        self._check_ports(infra)
        for component in infra:
            self._launch(component)
        for component in infra:
            self._await_ready(component, READY_TIMEOUT_S[component.name])
        self.provision()

    def provision(self) -> None:
        """Creates this stack's topics and tables (idempotent)."""
        try:
            provision(self.settings())
        except (VotingError, OSError, BotoCoreError, ClientError) as exc:
            raise StackError(f"cannot create topics and tables: {exc}") from exc

    def start_services(
        self, names: Iterable[str] | None = None, *, env: dict[str, str] | None = None
    ) -> None:
        """Starts services (all by default), with ``env`` added to their environment."""
        wanted = [self._service(n, env) for n in (names or SERVICES)]
        self._check_ports(wanted)
        for component in wanted:
            self._launch(component)
        for component in wanted:
            self._await_ready(component, SERVICE_READY_TIMEOUT_S)

    def restart(self, name: str, *, env: dict[str, str] | None = None) -> Child:
        """Restarts a component, optionally with changed environment (services only)."""
        component = self._components[name]
        if env:
            spec = replace(component.spec, env={**component.spec.env, **env})
            component = replace(component, spec=spec)
        old = self.children.get(name)
        if old is not None and old.alive():
            old.terminate()
        self._launch(component)
        self._await_ready(component, READY_TIMEOUT_S.get(name, SERVICE_READY_TIMEOUT_S))
        return self.children[name]

    def stop_services(self, names: Iterable[str], grace_s: float = 10.0) -> None:
        for name in names:
            child = self.children.pop(name, None)
            if child is not None:
                child.terminate(grace_s)

    def is_store(self, name: str) -> bool:
        """Whether ``name`` is infrastructure (broker, DynamoDB, Redis), not a service."""
        return self._components[name].kind == "infra"

    def kill(self, name: str) -> None:
        """``kill -9`` one component (fault injection)."""
        self.children[name].kill()

    def stop(self, grace_s: float = 10.0) -> None:
        """Services first (so they drain into a live infrastructure), then infrastructure."""
        order = [n for n in self.children if n in SERVICES] + [
            n for n in self.children if n not in SERVICES
        ]
        for name in order:
            child = self.children.pop(name)
            code = child.terminate(grace_s)
            log.info("stopped %s (exit %s)", name, code)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def supervise(self) -> Iterator[str]:
        """Yields a line for each event; restarts whatever dies, stores included.

        A restarted store gets its topics or tables again (idempotent). The local broker
        keeps its log in memory, so when it dies the log is gone: the services are
        restarted too, to start over on the new, empty log (votes it had not yet passed
        on are lost, as the README says).
        """
        backoff = RestartBackoff()
        while True:
            for name, child in list(self.children.items()):
                if child.alive():
                    continue
                delay = backoff.next_delay(name, now=time.monotonic())
                yield f"{name} exited with code {child.returncode}; restarting in {delay:.0f}s"
                time.sleep(delay)
                try:
                    self.restart(name)
                    backoff.started(name, now=time.monotonic())
                    if self._components[name].kind == "infra":
                        self.provision()
                        if name == "kafka":
                            yield "the broker lost its log; restarting the services"
                            for service in [n for n in self.children if n in SERVICES]:
                                self.restart(service)
                                backoff.started(service, now=time.monotonic())
                except StackError as exc:
                    yield f"{name} did not start again: {exc}"
                    continue
                yield f"{name} restarted"
            time.sleep(0.5)
            yield ""

    # -- internals -----------------------------------------------------------------

    def _service(self, name: str, env: dict[str, str] | None = None) -> Component:
        if name not in SERVICES:
            raise StackError(f"unknown service {name!r}", fix=f"one of {', '.join(SERVICES)}")
        entry = SERVICES[name]
        own = {
            "VOTING_METRICS_LISTEN": f"127.0.0.1:{self.options.metrics_ports[name]}",
            "OTEL_SERVICE_NAME": f"voting-{name}",
        }
        return components.service(
            name=name,
            command=entry.command,
            port=getattr(self.options, entry.port_option),
            env={**self.env(), **own, **(env or {})},
            tls=self.settings().tls,
            log_dir=self.log_dir,
            probe=entry.probe,
        )

    def _prepare_data_dir(self) -> Path:
        data = self.options.data_dir
        try:
            for sub in ("logs", "dynamodb", "redis"):
                (data / sub).mkdir(parents=True, exist_ok=True)
            probe = data / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StackError(
                f"data directory {data} is not usable: {exc}",
                fix="pass --data-dir with a writable directory, or remove the broken one",
            ) from exc
        return data

    def _lock_data_dir(self) -> None:
        """Two stacks on one data directory would share (and corrupt) its stores."""
        if self._lock is not None:
            return
        data = self._prepare_data_dir()
        lock = (data / "stack.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise StackError(
                f"data directory {data} is in use by another stack (pid {owner})",
                fix="stop that stack, or pass --data-dir with another directory",
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _check_free(self, wanted: dict[str, tuple[int, str]]) -> None:
        taken = [
            f"{port} ({name}: {option})"
            for name, (port, option) in wanted.items()
            if not (name in self.children and self.children[name].alive())
            and components.port_taken(port)
        ]
        if taken:
            raise StackError(
                f"ports taken: {', '.join(taken)}",
                fix="stop what uses them, or move each with the option named beside it",
            )

    def _check_ports(self, wanted: list[Component]) -> None:
        for component in wanted:
            if component.name in self.children and self.children[component.name].alive():
                continue
            if components.port_taken(component.port):
                option = component.name.replace("_", "-")
                raise StackError(
                    f"port {component.port} for {component.name} is taken",
                    fix=f"stop what uses it, or pass --{option}-port with a free port",
                )

    def start_extra(self, name: str, command: str, *, env: dict[str, str] | None = None) -> int:
        """Another process of ``command`` (e.g. a second worker, or a command service with
        other settings) under ``name``, on its own free port; returns the port."""
        port = components.free_port()
        listen = {
            "command-svc": "VOTING_COMMAND_LISTEN",
            "query-svc": "VOTING_QUERY_LISTEN",
            "worker": "VOTING_WORKER_HEALTH_LISTEN",
            "projector": "VOTING_PROJECTOR_LISTEN",
            "gateway": "VOTING_GATEWAY_LISTEN",
        }[command]
        probe = next(s.probe for s in SERVICES.values() if s.command == command)
        component = components.service(
            name=name,
            command=command,
            port=port,
            env={**self.env(), listen: f"127.0.0.1:{port}", **(env or {})},
            log_dir=self.log_dir,
            probe=probe,
        )
        self.launch(component)
        return port

    def launch(
        self,
        component: Component,
        timeout_s: float = SERVICE_READY_TIMEOUT_S,
        *,
        check_port: bool = True,
    ) -> Child:
        """Starts one more component (e.g. a second worker) and waits until it answers.

        ``check_port=False`` lets a second process of a gRPC service bind the same port:
        the servers set SO_REUSEPORT and the kernel spreads connections over them.
        """
        if check_port:
            self._check_ports([component])
        self._launch(component)
        self._await_ready(component, timeout_s)
        return self.children[component.name]

    def _launch(self, component: Component) -> None:
        self._components[component.name] = component
        self.children[component.name] = spawn(component.spec)

    def _await_ready(self, component: Component, timeout_s: float) -> None:
        child = self.children[component.name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.alive():
                raise StackError(
                    f"{component.name} exited with code {child.returncode} while starting:\n"
                    f"{child.log_tail()}",
                    fix=f"see {child.spec.log_path}; a broken data directory can be removed "
                    f"({self.options.data_dir})",
                )
            if component.ready():
                log.info("%s ready on port %s", component.name, component.port)
                return
            time.sleep(0.1)
        raise StackError(
            f"{component.name} did not answer within {timeout_s:.0f}s:\n{child.log_tail()}",
            fix=f"see {child.spec.log_path}",
        )
