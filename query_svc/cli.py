"""The read side's command: ``voting query-svc``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "query-svc", help="run the QueryService process (settings from VOTING_*)"
    ).set_defaults(handler=_query_svc)


def _query_svc(_: argparse.Namespace) -> int:
    from query_svc.app import main  # noqa: PLC0415 - loaded only when it runs

    return main()
