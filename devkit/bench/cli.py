"""``python -m devkit bench [BENCHMARK]`` and ``python -m devkit chaos``: each prints its
figures as JSON (and writes them to a file); ``chaos`` exits 1 on any violation."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path

from voting import logs

Handler = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks that print figures (JSON); without BENCHMARK: the whole pipeline",
    )
    bench.add_argument("--profile", choices=["smoke", "quick", "standard"], default="quick")
    bench.add_argument("--json", type=Path, help="where to write the figures")
    bench.add_argument("--seconds", type=float, help="of the pipeline load")
    bench.add_argument("--polls", type=int)
    bench.add_argument("--options", type=int, help="options per poll")
    bench.add_argument("--voters", type=int, help="distinct voters per poll at most")
    bench.add_argument("--repeat-ratio", type=float, help="share of votes from repeat voters")
    bench.add_argument("--rate", type=float, help="votes/s; 0: flat out (bounded backlog)")
    bench.add_argument("--batch", type=int, help="votes per CastVotes call; 1: CastVote")
    bench.add_argument("--watchers", type=int, help="followers of the first poll")
    bench.set_defaults(handler=_runner("pipeline"))
    benches = bench.add_subparsers(required=False, metavar="BENCHMARK")
    for name, help_text in (
        ("write", "write side: ingest, acks, worker, beside raw limits"),
        ("read", "read side: vote-to-visible latency, subscribers per process, vs bare gRPC"),
        ("sse", "SSE followers per gateway process vs gRPC streams per query process"),
    ):
        timed = benches.add_parser(name, help=help_text)
        timed.add_argument("--seconds", type=float, default=20.0)
        timed.add_argument("--json", type=Path, help="where to write the figures")
        if name != "write":
            timed.add_argument(
                "--max-followers", type=int, help="stop the ramps there (a smoke run)"
            )
        timed.set_defaults(handler=_runner(name))
    fanout = benches.add_parser(
        "fanout",
        help="followers per gateway / query process at 1 and 10 updates/s beside bare "
        "broadcast servers: CPU per push, p99 from publication, RSS (JSON and PNG)",
    )
    fanout.add_argument("--seconds", type=float, default=8.0, help="of each step at 1/s")
    fanout.add_argument(
        "--steps",
        type=_counts,
        default=argparse.SUPPRESS,  # absent: the benchmark's own default
        help="follower counts of the ramps, comma separated (default 1000..19500)",
    )
    fanout.add_argument(
        "--kinds",
        type=lambda text: tuple(text.split(",")),
        default=argparse.SUPPRESS,
        help="servers to ramp, comma separated (default gateway,bare_sse,query,bare_grpc)",
    )
    fanout.add_argument("--json", type=Path, help="where to write the figures (PNG beside)")
    fanout.set_defaults(handler=_runner("fanout"))
    recount = benches.add_parser("recount", help="recount time for a poll of N votes")
    recount.add_argument("--votes", type=int, default=1_000_000)
    recount.add_argument("--json", type=Path, help="where to write the figures")
    recount.set_defaults(handler=_runner("recount"))
    restore = benches.add_parser(
        "restore", help="restore time of a dedup partition whose changelog holds N records"
    )
    restore.add_argument("--records", type=int, default=10_000_000)
    restore.add_argument("--live", type=int, default=100_000, help="voters of open polls")
    restore.add_argument("--json", type=Path, help="where to write the figures")
    restore.set_defaults(handler=_runner("restore"))

    memory = benches.add_parser(
        "memory", help="Redis bytes per vote (request ids, statuses) and the budget at 250k/s"
    )
    memory.add_argument("--votes", type=int, default=200_000)
    memory.add_argument("--json", type=Path, help="where to write the figures")
    memory.set_defaults(handler=_runner("memory"))
    report = benches.add_parser(
        "report",
        help="regenerate the figures in README.md and docs/capacity.md from committed results",
    )
    report.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a figure is stale"
    )
    report.set_defaults(handler=_runner("report"))

    chaos = sub.add_parser(
        "chaos",
        help="a seeded random nemesis (kills and pauses of every process and store) under "
        "load, then a checker over the whole history; exits 1 on any violation (JSON)",
    )
    chaos.add_argument(
        "--profile", choices=["smoke", "short", "quick", "standard"], default="quick"
    )
    chaos.add_argument(
        "--seed", type=int, help="the schedule's seed (printed at start; default: random)"
    )
    chaos.add_argument(
        "--inject",
        choices=["miscount"],
        default="",
        help="break an invariant on purpose before checking (proves the checker fails)",
    )
    chaos.add_argument("--json", type=Path, help="where to write the figures")
    chaos.set_defaults(handler=_runner("chaos"))


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"counts are positive: {text!r}")
    return counts


def _runner(name: str) -> Handler:
    """Runs ``devkit.bench.<name>.run`` with the options it takes (the bench parser's own
    ones belong to the pipeline)."""

    def run(args: argparse.Namespace) -> int:
        module = importlib.import_module(f"devkit.bench.{name}")
        logs.configure("bench", level="WARNING")
        options = {k: v for k, v in vars(args).items() if k != "handler"}
        options["json_path"] = options.pop("json", None)
        accepted = inspect.signature(module.run).parameters
        figures = module.run(**{k: v for k, v in options.items() if k in accepted})
        figures.pop("timeline", None)  # in the JSON file; too long for a terminal
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0 if figures.get("ok", True) else 1

    return run
