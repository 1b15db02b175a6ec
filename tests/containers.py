"""The same infrastructure from container images, where a Docker engine answers.

``VOTING_TEST_INFRA=containers pytest`` runs the whole suite against Kafka, DynamoDB Local
and Redis images (testcontainers) instead of the local stand-ins; tests that kill or
restart a piece of infrastructure are skipped there. ``tests/containers`` runs a smoke
subset by default, and skips cleanly when no Docker engine answers.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from devkit.stack.stack import Stack, StackOptions

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
DYNAMODB_IMAGE = "amazon/dynamodb-local:2.5.2"
REDIS_IMAGE = "redis:7.0"


@functools.cache
def docker_answers() -> bool:
    """Whether a Docker engine answers; asked once, leaving no connection open (docker-py
    leaks its socket when the engine is absent, which pytest reports as an error)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return False
    import docker

    try:
        client = docker.from_env(timeout=2)
    except Exception:  # no usable engine
        return False
    try:
        return bool(client.ping())
    except Exception:  # no usable engine
        return False
    finally:
        client.close()


@contextlib.contextmanager
def container_infra(data_dir: Path) -> Iterator[Stack]:
    """A Stack whose infrastructure runs in containers (services still run as processes)."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    kafka = KafkaContainer(KAFKA_IMAGE).with_kraft()
    redis = RedisContainer(REDIS_IMAGE)
    dynamodb = (
        DockerContainer(DYNAMODB_IMAGE)
        .with_command("-jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry")
        .with_exposed_ports(8000)
    )
    with kafka, redis, dynamodb:
        wait_for_logs(dynamodb, "CorsParams", timeout=60)
        options = StackOptions.on_free_ports(
            data_dir=data_dir,
            ephemeral=True,
            partitions=4,
            dynamodb_port=int(dynamodb.get_exposed_port(8000)),
            redis_port=int(redis.get_exposed_port(6379)),
            env={
                "VOTING_KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
                "VOTING_DYNAMODB_ENDPOINT_URL": (
                    f"http://{dynamodb.get_container_host_ip()}:{dynamodb.get_exposed_port(8000)}"
                ),
                "VOTING_REDIS_URL": (
                    f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
                ),
            },
        )
        stack = Stack(options)
        stack.provision()
        yield stack
