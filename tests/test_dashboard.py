"""The Grafana dashboard queries only series the services really expose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import command_svc.metrics
import command_svc.worker.metrics
import projector.metrics
import query_svc.metrics
import voting.lag
import voting.server

pytestmark = pytest.mark.unit

DASHBOARD = Path(__file__).resolve().parents[1] / "k8s" / "grafana" / "voting-dashboard.json"
MODULES = (
    command_svc.metrics,
    command_svc.worker.metrics,
    projector.metrics,
    query_svc.metrics,
    voting.lag,
    voting.server,
)


def exposed() -> set[str]:
    """Every series name the registered metric families produce (labelled families have
    no samples until a label set is used, so names come from the family and its type)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {
        metric.name + suffix
        for metric in REGISTRY.collect()
        for suffix in suffixes.get(metric.type, ("",))
    }


def test_every_series_in_the_dashboard_is_exposed() -> None:
    assert MODULES  # imported for their registrations
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:voting|grpc_server)_[a-z_]+)\b", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exposed(), f"unknown series: {sorted(queried - exposed())}"
