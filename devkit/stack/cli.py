"""``python -m devkit up`` and ``python -m devkit demo`` (``make run``): the local stack,
and a live demo poll on it."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
from pathlib import Path
from types import FrameType

from devkit.console.demo import demo
from devkit.keys import DEV_KEY_ID, development_keys
from devkit.stack.stack import (
    DEFAULT_METRICS_PORT_BASE,
    SERVICES,
    Stack,
    StackOptions,
    metrics_ports_from,
)
from devkit.tokens import TokenIssuer, load_private_key
from voting import logs

PORTS = (
    ("kafka", 19092),
    ("dynamodb", 18000),
    ("redis", 16379),
    ("command", 50051),
    ("query", 50052),
    ("worker", 50053),
    ("projector", 50054),
    ("gateway", 8080),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        help="development: anyone may do anything; jwt: tokens from `devkit token issue`",
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
    for name, default in PORTS:
        up.add_argument(f"--{name}-port", type=int, default=default, help=f"port of {name}")
    up.add_argument(
        "--metrics-port-base",
        type=int,
        default=DEFAULT_METRICS_PORT_BASE,
        help=f"first of the {len(SERVICES)} ports of the services' /metrics, one per service",
    )
    up.set_defaults(handler=up_main, demo=False)

    demo_parser = sub.add_parser(
        "demo", parents=[up], add_help=False, help="devkit up, then a live demo poll (make run)"
    )
    demo_parser.add_argument(
        "--votes", type=int, default=20_000, help="votes the simulated voters cast"
    )
    demo_parser.add_argument("--rate", type=float, default=1_000.0, help="votes per second")
    demo_parser.set_defaults(handler=up_main, demo=True)


def up_main(args: argparse.Namespace) -> int:
    logs.configure("stack")
    options = StackOptions(
        data_dir=args.data_dir,
        partitions=args.partitions,
        otlp_endpoint=args.otlp_endpoint,
        auth=args.auth,
        tls=args.tls,
        **{f"{name}_port": getattr(args, f"{name}_port") for name, _ in PORTS},
        metrics_ports=metrics_ports_from(args.metrics_port_base),
    )
    stack = Stack(options)

    def interrupt(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    try:
        stack.start(infra_only=args.infra_only)
        print("devkit up: ready", flush=True)
        for name, address in stack.endpoints().items():
            if args.infra_only and name not in {"kafka", "dynamodb", "redis"}:
                continue
            print(f"  {name:<17} {address}")
        print("environment that points tools (voting recount, devkit watch, ...) at this stack:")
        for key, value in stack.env().items():
            if "\n" in value:
                continue  # key material: the services read it, a shell line cannot hold it
            secret = any(w in key for w in ("SECRET", "PASSWORD")) and value != "local"
            shown = "***" if secret else shlex.quote(value)
            print(f"  export {key}={shown}")
        if args.demo and not args.infra_only:
            run_demo(stack, votes=args.votes, rate=args.rate)
        print("Ctrl-C stops everything.", flush=True)
        for event in stack.supervise():
            if event:
                print(f"devkit up: {event}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("devkit up: stopping", flush=True)
        stack.stop()
        print("devkit up: stopped", flush=True)
    return 0


def run_demo(stack: Stack, *, votes: int, rate: float) -> None:
    env = stack.env()
    settings = stack.settings()
    token = ""
    if settings.auth.mode == "jwt":
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
        print("devkit demo: the demo did not finish; the stack keeps running", flush=True)
