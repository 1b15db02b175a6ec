"""The projector's commands: ``voting projector``, ``voting recount``, ``voting projection
rebuild`` (operators run the last two; the Helm chart's CronJob runs ``recount --sweep``)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    projector = sub.add_parser(
        "projector", help="run the projector process (settings from VOTING_*)"
    )
    projector.set_defaults(handler=_projector)

    recount = sub.add_parser(
        "recount", help="recount a closed poll from DynamoDB and make its results final"
    )
    recount.add_argument("poll_id", nargs="?", help="the poll to recount")
    recount.add_argument(
        "--sweep",
        action="store_true",
        help="recount every closed poll whose results are not final yet (a safety net)",
    )
    recount.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for the pipeline to drain"
    )
    recount.set_defaults(handler=_recount)

    projection = sub.add_parser("projection", help="operate the read model")
    projections = projection.add_subparsers(required=True, metavar="ACTION")
    rebuilder = projections.add_parser(
        "rebuild", help="rebuild the read model from the log into a new namespace, then switch"
    )
    rebuilder.add_argument(
        "--drop-previous", action="store_true", help="delete the old namespace after the switch"
    )
    rebuilder.set_defaults(handler=_rebuild)


# Handlers import what they run only when they run: every `voting` command builds the
# whole parser, and a process must not load the other services' code.


def _projector(_: argparse.Namespace) -> int:
    from projector.app import main  # noqa: PLC0415

    return main()


def _recount(args: argparse.Namespace) -> int:
    from projector import operations  # noqa: PLC0415

    if args.sweep == bool(args.poll_id):
        print("voting recount: give a POLL_ID or --sweep (not both)", file=sys.stderr)
        return 2
    if args.sweep:
        return operations.sweep_main(wait_s=args.wait)
    return operations.recount_main(args.poll_id, wait_s=args.wait)


def _rebuild(args: argparse.Namespace) -> int:
    from projector import operations  # noqa: PLC0415

    return operations.rebuild_main(drop_previous=args.drop_previous)
