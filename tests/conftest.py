"""Session fixtures: one real infrastructure (a fresh broker) per test session.

By default the infrastructure is the local stand-ins as child processes (what
``devkit up`` runs). ``VOTING_TEST_INFRA=containers`` uses Kafka, DynamoDB Local and
Redis container images instead, where a Docker engine answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.stack.stack import Stack
from tests.containers import container_infra, docker_answers
from tests.harness import Deployment, infra_options

CONTAINERS = os.environ.get("VOTING_TEST_INFRA", "local") == "containers"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CONTAINERS:
        return
    skip = pytest.mark.skip(reason="kills local infrastructure processes; not with containers")
    for item in items:
        if item.get_closest_marker("local_infra"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _units_start_nothing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test marked `unit` that starts a child process or connects a socket fails: the
    `unit` set is what runs with no infrastructure at all (`pytest -m unit`)."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test must not start a process or open a connection")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Kafka, DynamoDB Local and Redis on free loopback ports, fresh for the session."""
    data_dir = tmp_path_factory.mktemp("infra")
    if CONTAINERS:
        if not docker_answers():
            pytest.skip("VOTING_TEST_INFRA=containers, but no Docker engine answers")
        with container_infra(data_dir) as stack:
            yield stack
        return
    stack = Stack(infra_options(data_dir))
    stack.start(infra_only=True)
    yield stack
    stack.stop()


@pytest.fixture
def deployment(infra: Stack, tmp_path: Path) -> Iterator[Deployment]:
    """An isolated copy of the system (topics, tables, groups, Redis db); services not started."""
    d = Deployment(infra, tmp_path, broker_shows_aborted_records=not CONTAINERS)
    yield d
    d.stop()


@pytest.fixture
def running(deployment: Deployment) -> Deployment:
    """A deployment with every service running."""
    deployment.start()
    return deployment
