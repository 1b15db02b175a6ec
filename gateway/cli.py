"""The gateway's command: ``voting gateway``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "gateway", help="run the HTTP gateway process (settings from VOTING_*)"
    ).set_defaults(handler=_gateway)


def _gateway(_: argparse.Namespace) -> int:
    from gateway.app import main  # noqa: PLC0415 - loaded only when it runs

    return main()
