"""A minimal Server-Sent Events reader for tests (what EventSource does, minus reconnecting)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.harness import Deployment, wait_until
from voting.v1 import command_service_pb2 as cmd


@dataclass(frozen=True)
class Event:
    id: int | None
    data: dict[str, Any] | None  # None for a comment (heartbeat)

    @property
    def heartbeat(self) -> bool:
        return self.data is None


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """Events and comments, in order, until the server ends the response."""
    event_id: int | None = None
    data: list[str] = []
    comment = False
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if data:
                yield Event(event_id, json.loads("\n".join(data)))
            elif comment:
                yield Event(None, None)
            event_id, data, comment = None, [], False
        elif line.startswith(":"):
            comment = True
        elif line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def gateway_url(deployment: Deployment, path: str) -> str:
    return f"http://127.0.0.1:{deployment.stack.options.gateway_port}{path}"


def poll_in_read_model(deployment: Deployment, options: Iterable[str] = ("a", "b", "c")) -> str:
    poll_id = deployment.create_poll(options=options)
    wait_until(
        lambda: deployment.redis.exists(deployment.keys.poll(poll_id)),
        timeout_s=30,
        what="the poll",
    )
    return poll_id


def cast(deployment: Deployment, poll_id: str, votes: dict[str, int]) -> None:
    """Casts ``votes[option]`` votes for each option, from new voters, with CastVotes."""
    tag = uuid.uuid4().hex[:6]
    requests = [
        cmd.CastVoteRequest(
            request_id=f"{tag}-{option}-{i}",
            poll_id=poll_id,
            voter_id=f"voter-{tag}-{option}-{i}",
            option_id=option,
        )
        for option, count in votes.items()
        for i in range(count)
    ]
    for start in range(0, len(requests), 1000):
        batch = cmd.CastVotesRequest(requests=requests[start : start + 1000])
        reply = deployment.commands.CastVotes(batch, timeout=30)
        assert all(r.status.code == 0 for r in reply.results)


def close(deployment: Deployment, poll_id: str) -> None:
    deployment.commands.ClosePoll(
        cmd.ClosePollRequest(request_id=f"close-{poll_id}-{time.time_ns()}", poll_id=poll_id),
        timeout=30,
    )
