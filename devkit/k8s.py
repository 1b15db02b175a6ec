"""Renders the Helm chart offline, and writes k8s/manifests/ from its default values
(``make k8s-manifests``; ``python -m devkit k8s-manifests --check`` exits 1 if stale).

Rendering goes through helm-python-sdk (Helm's own engine as a library): no cluster, no
network, no helm binary.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import helm_python

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "k8s" / "helm" / "voting"
MANIFESTS = ROOT / "k8s" / "manifests"
RELEASE = "voting"
HEADER = (
    "# Rendered from k8s/helm/voting with its default values (release {release!r}).\n"
    "# Do not edit: change the chart, then run `make k8s-manifests`.\n"
)
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)

Manifest = dict[str, Any]


def values_file(name: str) -> dict[str, Any]:
    """A values file of the chart (e.g. values-production.yaml) as a dict."""
    return helm_python.values_from_yaml((CHART / name).read_text())


def render(values: dict[str, Any] | None = None, *, release: str = RELEASE) -> dict[str, str]:
    """Template file name (``deployment.yaml``) -> its rendered text, hooks included;
    NOTES.txt and templates that render to nothing are left out. Raises
    helm_python.HelmError when the values break the schema or a template fails."""
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=release, is_install=True)
    files: dict[str, str] = {}
    for path, text in sorted(rendered.items()):
        name = Path(path).name
        if name == "NOTES.txt" or name.startswith("_"):
            continue
        docs = [doc.strip() for doc in _SEPARATOR.split(text)]
        kept = [doc + "\n" for doc in docs if _has_content(doc)]
        if kept:
            files[name] = "---\n".join(kept)
    return files


def notes(values: dict[str, Any] | None = None, *, release: str = RELEASE) -> str:
    with helm_python.Chart.load(CHART) as chart:
        return chart.render(values, name=release, namespace="voting")[
            f"{CHART.name}/templates/NOTES.txt"
        ]


def documents(files: dict[str, str]) -> list[Manifest]:
    """Every Kubernetes object of a render (or of k8s/manifests/)."""
    objects: list[Manifest] = []
    for text in files.values():
        for doc in _SEPARATOR.split(text):
            if _has_content(doc):
                objects.append(helm_python.values_from_yaml(doc))
    return objects


def _has_content(doc: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in doc.splitlines())


def manifest_files() -> dict[str, str]:
    """What k8s/manifests/ should hold: one file per template, default values."""
    header = HEADER.format(release=RELEASE)
    return {name: header + text for name, text in render().items()}


def on_disk() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(MANIFESTS.glob("*.yaml"))}


def write() -> None:
    expected = manifest_files()
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    for stale in set(on_disk()) - set(expected):
        (MANIFESTS / stale).unlink()
    for name, text in expected.items():
        (MANIFESTS / name).write_text(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    manifests = sub.add_parser(
        "k8s-manifests", help="render k8s/manifests/ from the Helm chart, or check them"
    )
    action = manifests.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite k8s/manifests/")
    action.add_argument("--check", action="store_true", help="exit 1 if k8s/manifests/ is stale")
    manifests.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.write:
        write()
        print(f"wrote {len(manifest_files())} files to {MANIFESTS.relative_to(ROOT)}/")
        return 0
    if on_disk() != manifest_files():
        print("k8s/manifests/ is stale: run `make k8s-manifests`")
        return 1
    return 0
