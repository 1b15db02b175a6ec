"""Session fixtures: one real infrastructure (a fresh broker) per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Deployment, infra_options
from voting.stack.stack import Stack


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Tansu, DynamoDB Local and Redis as child processes on free loopback ports."""
    stack = Stack(infra_options(tmp_path_factory.mktemp("infra")))
    stack.start(infra_only=True)
    yield stack
    stack.stop()


@pytest.fixture
def deployment(infra: Stack, tmp_path: Path) -> Iterator[Deployment]:
    """An isolated copy of the system (topics, tables, groups, Redis db); services not started."""
    d = Deployment(infra, tmp_path)
    yield d
    d.stop()


@pytest.fixture
def running(deployment: Deployment) -> Deployment:
    """A deployment with every service running."""
    deployment.start()
    return deployment
