"""``python -m devkit``: the development tools, each registered by its own module."""

from __future__ import annotations

import argparse

from devkit import k8s, keys, protogen
from devkit.bench import cli as bench_cli
from devkit.console import watch
from devkit.stack import cli as stack_cli
from voting.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv, name="devkit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devkit", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for register in (
        stack_cli.register,
        watch.register,
        keys.register,
        bench_cli.register,
        protogen.register,
        k8s.register,
    ):
        register(sub)
    return parser
