"""Offline validation of Kubernetes objects against the API's own schemas.

kubernetes-validate ships the OpenAPI schemas of every Kubernetes minor release; strict
mode also refuses fields the API does not know (a typo would otherwise be dropped by
the API server without a word). It knows built-in kinds only: custom resources (the
ServiceMonitor) are checked separately by the tests.
"""

from __future__ import annotations

import importlib
from typing import Any

# The oldest release the chart supports is 1.30 (Chart.yaml kubeVersion: the preStop
# sleep action); validate against a current one too.
KUBE_VERSIONS = ("1.30.0", "1.33.0")
CUSTOM_API_GROUPS = frozenset({"monitoring.coreos.com"})

# kubernetes-validate has no type information: reach it through this one typed door.
_kv: Any = importlib.import_module("kubernetes_validate")


class InvalidManifest(AssertionError):
    pass


def is_custom(manifest: dict[str, Any]) -> bool:
    return str(manifest["apiVersion"]).split("/")[0] in CUSTOM_API_GROUPS


def validate(manifest: dict[str, Any], *, version: str) -> None:
    """Raises InvalidManifest naming the object and the offending field."""
    try:
        _kv.validate(manifest, version, strict=True)
    except _kv.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path) or "(top)"
        raise InvalidManifest(
            f"{manifest['kind']}/{manifest['metadata']['name']} at {where} "
            f"(Kubernetes {version}): {exc.message}"
        ) from None
    except _kv.SchemaNotFoundError as exc:
        raise InvalidManifest(exc.message) from None
