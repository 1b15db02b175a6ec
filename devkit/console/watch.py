"""``python -m devkit watch POLL``: live results in the terminal until they are final."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import grpc

from devkit.console.view import LiveView
from voting.config import Settings, TlsSettings
from voting.tls import aio_channel
from voting.v1 import query_service_pb2 as q
from voting.v1 import query_service_pb2_grpc


async def follow(view: LiveView, stub: Any, poll_id: str, metadata: Any = None) -> None:
    """Feeds WatchResults into ``view`` until the FINAL snapshot (the stream then ends)."""
    async for message in stub.WatchResults(
        q.WatchResultsRequest(poll_id=poll_id), metadata=metadata
    ):
        view.update(message.results)


async def redraw(view: LiveView, *, fps: float = 10.0) -> None:
    while True:
        view.render()
        await asyncio.sleep(1 / fps)


async def watch(target: str, poll_id: str, *, tls: TlsSettings, token: str = "") -> int:
    metadata = [("authorization", f"Bearer {token}")] if token else None
    async with aio_channel(target, tls) as channel:
        stub: Any = query_service_pb2_grpc.QueryServiceStub(channel)
        try:
            poll = (
                await stub.GetPoll(q.GetPollRequest(poll_id=poll_id), timeout=10, metadata=metadata)
            ).poll
        except grpc.aio.AioRpcError as exc:
            print(f"devkit watch: {exc.code().name}: {exc.details()}")
            return 1
        view = LiveView(poll)
        painter = asyncio.create_task(redraw(view))
        try:
            await follow(view, stub, poll_id, metadata)
        finally:
            painter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await painter
            view.render(force=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watcher = sub.add_parser("watch", help="follow a poll's live results until they are final")
    watcher.add_argument("poll_id")
    watcher.add_argument("--query", help="QueryService address (default: VOTING_QUERY_LISTEN)")
    watcher.add_argument("--token", default="", help="bearer token (private polls)")
    watcher.set_defaults(handler=_watch)


def _watch(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    target = args.query or settings.query.listen
    return asyncio.run(watch(target, args.poll_id, tls=settings.tls, token=args.token))
