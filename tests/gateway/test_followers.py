"""Many browsers on one gateway process share one upstream stream and all see FINAL."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.gateway.sse import Event, cast, close, events, gateway_url, poll_in_read_model
from tests.harness import Deployment

FOLLOWERS = 500


def test_five_hundred_sse_clients_each_receive_the_final_snapshot_and_the_end(
    running: Deployment,
) -> None:
    poll_id = poll_in_read_model(running)
    cast(running, poll_id, {"a": 5, "b": 2, "c": 1})
    url = gateway_url(running, f"/api/polls/{poll_id}/events")

    async def scenario() -> list[Event | None]:
        connected = 0
        all_connected = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=180)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def follow() -> Event | None:
                nonlocal connected
                last: Event | None = None
                async with session.get(url) as response:
                    assert response.status == 200
                    async for event in events(response):  # until the server ends it
                        if event.data is None:
                            continue
                        if last is None:
                            connected += 1
                            if connected == FOLLOWERS:
                                all_connected.set()
                        last = event
                return last

            followers = [asyncio.create_task(follow()) for _ in range(FOLLOWERS)]
            await asyncio.wait_for(all_connected.wait(), 60)
            async with session.get(gateway_url(running, "/healthz")) as response:
                health = json.loads(await response.text())
            assert (health["polls"], health["subscribers"]) == (1, FOLLOWERS)
            await asyncio.to_thread(close, running, poll_id)
            return await asyncio.wait_for(asyncio.gather(*followers), 120)

    lasts = asyncio.run(scenario())

    assert len(lasts) == FOLLOWERS
    finals = [e.data for e in lasts if e is not None and e.data is not None]
    assert len(finals) == FOLLOWERS
    assert all(data["final"] is True for data in finals)
    assert {data["total"] for data in finals} == {"8"}
