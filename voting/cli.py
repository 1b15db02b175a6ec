"""The ``voting`` command: the local stack, the services, and tools."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from voting import logs
from voting.config import Settings, describe
from voting.errors import VotingError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except VotingError as exc:
        print(f"voting: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voting", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up", add_help=False, help="run the local stack (infrastructure and services)"
    )
    up.add_argument("-h", "--help", action="help", help="show this help message and exit")
    up.add_argument(
        "--infra-only", action="store_true", help="start Kafka, DynamoDB and Redis only"
    )
    up.add_argument(
        "--data-dir", type=Path, default=Path(".voting"), help="where data and logs live"
    )
    up.add_argument("--partitions", type=int, default=4, help="partitions of the votes topics")
    up.add_argument(
        "--auth",
        choices=["development", "jwt"],
        default="development",
        help="development: anyone may do anything; jwt: tokens from `voting token issue`",
    )
    up.add_argument(
        "--tls",
        choices=["off", "on", "mutual"],
        default="off",
        help="TLS on every gRPC server with development certificates (mutual: client certs too)",
    )
    up.add_argument(
        "--otlp-endpoint",
        default="",
        help="send traces to this OTLP/gRPC collector, e.g. http://127.0.0.1:4317 (Jaeger)",
    )
    for name, default in (
        ("kafka", 19092),
        ("dynamodb", 18000),
        ("redis", 16379),
        ("command", 50051),
        ("query", 50052),
        ("worker", 50053),
        ("projector", 50054),
        ("gateway", 8080),
    ):
        up.add_argument(f"--{name}-port", type=int, default=default, help=f"port of {name}")
    up.set_defaults(handler=_up, demo=False)

    demo = sub.add_parser(
        "demo", parents=[up], add_help=False, help="voting up, then a live demo poll (make run)"
    )
    demo.add_argument("--votes", type=int, default=20_000, help="votes the simulated voters cast")
    demo.add_argument("--rate", type=float, default=1_000.0, help="votes per second")
    demo.set_defaults(handler=_up, demo=True)

    watch = sub.add_parser("watch", help="follow a poll's live results until they are final")
    watch.add_argument("poll_id")
    watch.add_argument("--query", help="QueryService address (default: VOTING_QUERY_LISTEN)")
    watch.add_argument("--token", default="", help="bearer token (private polls)")
    watch.set_defaults(handler=_watch)

    init = sub.add_parser("init", help="create topics and tables (idempotent)")
    init.set_defaults(handler=_init)

    config = sub.add_parser("config", help="list every setting and its environment variable")
    config.set_defaults(handler=_config)

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

    token = sub.add_parser("token", help="development tokens")
    tokens = token.add_subparsers(required=True, metavar="ACTION")
    issue = tokens.add_parser("issue", help="mint a signed token (development keys by default)")
    issue.add_argument("--subject", required=True, help="the voter id (or a service's name)")
    issue.add_argument(
        "--scope",
        action="append",
        default=[],
        help="vote:<poll>, vote:*, read:<poll>, read:*, admin (repeatable)",
    )
    issue.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    issue.add_argument("--key", type=Path, help="signing key (default: <data-dir>/keys/token.pem)")
    issue.add_argument("--kid", default="dev", help="key id in the token header")
    issue.add_argument("--data-dir", type=Path, default=Path(".voting"))
    issue.set_defaults(handler=_issue_token)

    projection = sub.add_parser("projection", help="operate the read model")
    projections = projection.add_subparsers(required=True, metavar="ACTION")
    rebuild = projections.add_parser(
        "rebuild", help="rebuild the read model from the log into a new namespace, then switch"
    )
    rebuild.add_argument(
        "--drop-previous", action="store_true", help="delete the old namespace after the switch"
    )
    rebuild.set_defaults(handler=_rebuild)

    bench = sub.add_parser(
        "bench",
        help="benchmarks that print figures (JSON); without BENCHMARK: the whole pipeline",
    )
    bench.add_argument("--profile", choices=["quick", "standard"], default="quick")
    bench.add_argument("--json", type=Path, help="where to write the figures")
    bench.add_argument("--seconds", type=float, help="of the pipeline load")
    bench.add_argument("--polls", type=int)
    bench.add_argument("--options", type=int, help="options per poll")
    bench.add_argument("--voters", type=int, help="distinct voters per poll at most")
    bench.add_argument("--repeat-ratio", type=float, help="share of votes from repeat voters")
    bench.add_argument("--rate", type=float, help="votes/s; 0: flat out (bounded backlog)")
    bench.add_argument("--batch", type=int, help="votes per CastVotes call; 1: CastVote")
    bench.add_argument("--watchers", type=int, help="followers of the first poll")
    bench.set_defaults(handler=_bench("bench.pipeline"))
    benches = bench.add_subparsers(required=False, metavar="BENCHMARK")
    write = benches.add_parser("write", help="write side: ingest, acks, worker, beside raw limits")
    write.add_argument("--seconds", type=float, default=20.0)
    write.add_argument("--json", type=Path, help="where to write the figures")
    write.set_defaults(handler=_bench("bench.write"))
    read = benches.add_parser(
        "read", help="read side: vote-to-visible latency, subscribers per process, vs bare gRPC"
    )
    read.add_argument("--seconds", type=float, default=20.0)
    read.add_argument("--json", type=Path, help="where to write the figures")
    read.set_defaults(handler=_bench("bench.read"))
    sse = benches.add_parser(
        "sse", help="SSE followers per gateway process vs gRPC streams per query process"
    )
    sse.add_argument("--seconds", type=float, default=20.0)
    sse.add_argument("--json", type=Path, help="where to write the figures")
    sse.set_defaults(handler=_bench("bench.sse"))
    recount_bench = benches.add_parser("recount", help="recount time for a poll of N votes")
    recount_bench.add_argument("--votes", type=int, default=1_000_000)
    recount_bench.add_argument("--json", type=Path, help="where to write the figures")
    recount_bench.set_defaults(handler=_bench("bench.recount"))
    restore_bench = benches.add_parser(
        "restore", help="restore time of a dedup partition whose changelog holds N records"
    )
    restore_bench.add_argument("--records", type=int, default=10_000_000)
    restore_bench.add_argument("--live", type=int, default=100_000, help="voters of open polls")
    restore_bench.add_argument("--json", type=Path, help="where to write the figures")
    restore_bench.set_defaults(handler=_bench("bench.restore"))

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
    chaos.set_defaults(handler=_bench("bench.chaos"))

    for command, target in (
        ("command-svc", "command_svc.app:main"),
        ("worker", "command_svc.worker.app:main"),
        ("projector", "projector.app:main"),
        ("query-svc", "query_svc.app:main"),
        ("gateway", "gateway.app:main"),
    ):
        service = sub.add_parser(
            command, help=f"run the {command} process (settings from VOTING_*)"
        )
        service.set_defaults(handler=_service(target))
    return parser


def _bench(module_name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import inspect  # noqa: PLC0415
        import json  # noqa: PLC0415

        module = __import__(module_name, fromlist=["run"])
        logs.configure("bench", level="WARNING")
        options = {k: v for k, v in vars(args).items() if k not in {"handler"}}
        options["json_path"] = options.pop("json")
        # Each benchmark takes the options its run() names (the bench parser's own ones
        # belong to the pipeline).
        accepted = inspect.signature(module.run).parameters
        figures = module.run(**{k: v for k, v in options.items() if k in accepted})
        figures.pop("timeline", None)  # in the JSON file; too long for a terminal
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0 if figures.get("ok", True) else 1

    return run


def _service(target: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        module_name, func_name = target.split(":")
        module = __import__(module_name, fromlist=[func_name])
        result: int = getattr(module, func_name)()
        return result

    return run


def _watch(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from voting.console.watch import watch  # noqa: PLC0415

    settings = Settings.from_env()
    target = args.query or settings.query.listen
    return asyncio.run(watch(target, args.poll_id, tls=settings.tls, token=args.token))


def _init(_: argparse.Namespace) -> int:
    from voting.provisioning import provision  # noqa: PLC0415

    settings = Settings.from_env()
    logs.configure("init", level=settings.telemetry.log_level)
    provision(settings)
    print("topics and tables are in place")
    return 0


def _recount(args: argparse.Namespace) -> int:
    from projector.app import recount_main, sweep_main  # noqa: PLC0415 - projector only here

    if args.sweep == bool(args.poll_id):
        print("voting recount: give a POLL_ID or --sweep (not both)", file=sys.stderr)
        return 2
    if args.sweep:
        return sweep_main(wait_s=args.wait)
    return recount_main(args.poll_id, wait_s=args.wait)


def _rebuild(args: argparse.Namespace) -> int:
    from projector.app import rebuild_main  # noqa: PLC0415 - loads the projector only here

    return rebuild_main(drop_previous=args.drop_previous)


def _issue_token(args: argparse.Namespace) -> int:
    from voting.keys import development_keys  # noqa: PLC0415
    from voting.tokens import TokenIssuer, load_private_key  # noqa: PLC0415

    settings = Settings.from_env()
    path = args.key or development_keys(args.data_dir / "keys").token_private
    issuer = TokenIssuer(
        load_private_key(path.read_bytes()),
        kid=args.kid,
        issuer=settings.auth.jwt_issuer,
        audience=settings.auth.jwt_audience,
    )
    print(issuer.issue(args.subject, args.scope, ttl_s=args.ttl))
    return 0


def _config(_: argparse.Namespace) -> int:
    for env, default, doc in describe():
        print(f"{env}={default}\n    {doc}")
    return 0


def _run_demo(stack: Any, *, votes: int, rate: float) -> None:
    import asyncio  # noqa: PLC0415

    from voting.console.demo import demo  # noqa: PLC0415

    env = stack.env()
    settings = stack.settings()
    token = ""
    if settings.auth.mode == "jwt":
        from voting.keys import DEV_KEY_ID, development_keys  # noqa: PLC0415
        from voting.tokens import TokenIssuer, load_private_key  # noqa: PLC0415

        key = development_keys(stack.options.data_dir / "keys").token_private
        issuer = TokenIssuer(
            load_private_key(key.read_bytes()),
            kid=DEV_KEY_ID,
            issuer=settings.auth.jwt_issuer,
            audience=settings.auth.jwt_audience,
        )
        token = issuer.issue("demo", ["admin", "proxy:*", "read:*"])
    code = asyncio.run(
        demo(
            env["VOTING_COMMAND_LISTEN"],
            env["VOTING_QUERY_LISTEN"],
            votes=votes,
            rate=rate,
            gateway=env["VOTING_GATEWAY_LISTEN"],
            tls=settings.tls,
            token=token,
        )
    )
    if code != 0:
        print("voting demo: the demo did not finish; the stack keeps running", flush=True)


def _up(args: argparse.Namespace) -> int:
    from voting.stack.stack import Stack, StackOptions  # noqa: PLC0415

    logs.configure("stack")
    options = StackOptions(
        data_dir=args.data_dir,
        partitions=args.partitions,
        kafka_port=args.kafka_port,
        dynamodb_port=args.dynamodb_port,
        redis_port=args.redis_port,
        command_port=args.command_port,
        query_port=args.query_port,
        worker_port=args.worker_port,
        projector_port=args.projector_port,
        gateway_port=args.gateway_port,
        otlp_endpoint=args.otlp_endpoint,
        auth=args.auth,
        tls=args.tls,
    )
    stack = Stack(options)

    def interrupt(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    try:
        stack.start(infra_only=args.infra_only)
        print("voting up: ready", flush=True)
        for name, address in stack.endpoints().items():
            if args.infra_only and name not in {"kafka", "dynamodb", "redis"}:
                continue
            print(f"  {name:<17} {address}")
        print("environment that points tools (voting watch, voting recount, ...) at this stack:")
        for key, value in stack.env().items():
            if "\n" in value:
                continue  # key material: the services read it, a shell line cannot hold it
            secret = any(w in key for w in ("SECRET", "PASSWORD")) and value != "local"
            shown = "***" if secret else shlex.quote(value)
            print(f"  export {key}={shown}")
        if args.demo and not args.infra_only:
            _run_demo(stack, votes=args.votes, rate=args.rate)
        print("Ctrl-C stops everything.", flush=True)
        for event in stack.supervise():
            if event:
                print(f"voting up: {event}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("voting up: stopping", flush=True)
        stack.stop()
        print("voting up: stopped", flush=True)
    return 0
