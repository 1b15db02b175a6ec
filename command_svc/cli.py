"""The write side's commands: ``voting command-svc`` and ``voting worker``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "command-svc", help="run the CommandService process (settings from VOTING_*)"
    ).set_defaults(handler=_command_svc)
    sub.add_parser(
        "worker", help="run the dedup worker process (settings from VOTING_*)"
    ).set_defaults(handler=_worker)


# Handlers import what they run only when they run: every `voting` command builds the
# whole parser, and a process must not load the other services' code.


def _command_svc(_: argparse.Namespace) -> int:
    from command_svc.app import main  # noqa: PLC0415

    return main()


def _worker(_: argparse.Namespace) -> int:
    from command_svc.worker.app import main  # noqa: PLC0415

    return main()
