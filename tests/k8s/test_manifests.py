"""k8s/manifests/ is the chart rendered with its default values, and valid Kubernetes."""

from __future__ import annotations

import pytest

from devkit.k8s import documents, manifest_files, on_disk
from tests.k8s import kube

pytestmark = pytest.mark.unit


def test_manifests_are_a_fresh_render_of_the_chart() -> None:
    stale = {
        name
        for name in set(on_disk()) | set(manifest_files())
        if on_disk().get(name) != manifest_files().get(name)
    }
    assert stale == set(), (
        f"k8s/manifests/ differs from the chart in {sorted(stale)}: run `make k8s-manifests`"
    )


@pytest.mark.parametrize("version", kube.KUBE_VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    manifests = documents(on_disk())
    assert {m["kind"] for m in manifests} >= {"Deployment", "Service", "ConfigMap", "Job"}
    for manifest in manifests:
        assert not kube.is_custom(manifest)  # applies without prometheus-operator
        kube.validate(manifest, version=version)
