"""The ``voting`` command: what runs in production, and nothing else.

The runtime owns ``init`` and ``config``; every other subcommand belongs to the package
that implements it and is found through the ``voting.commands`` entry points (each a
``register(subparsers)``), so this module imports no service. Development tools (the
local stack, the demo, benchmarks, chaos) are ``python -m devkit``, which production
does not ship.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from voting import logs
from voting.config import Settings, describe
from voting.errors import VotingError


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv, name="voting")


def run(parser: argparse.ArgumentParser, argv: list[str] | None, *, name: str) -> int:
    """Run the subcommand ``argv`` names; a VotingError is one line on stderr and exit 1."""
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except VotingError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voting", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    register(sub)
    for entry in sorted(entry_points(group="voting.commands"), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("init", help="create topics and tables (idempotent)").set_defaults(handler=_init)
    sub.add_parser("config", help="list every setting and its environment variable").set_defaults(
        handler=_config
    )


def _init(_: argparse.Namespace) -> int:
    from voting.provisioning import provision  # noqa: PLC0415 - loads every client library

    settings = Settings.from_env()
    logs.configure("init", level=settings.telemetry.log_level)
    provision(settings)
    print("topics and tables are in place")
    return 0


def _config(_: argparse.Namespace) -> int:
    for env, default, doc in describe():
        print(f"{env}={default}\n    {doc}")
    return 0
