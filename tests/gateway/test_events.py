"""Server-Sent Events against the real pipeline: live updates, FINAL ends the stream,
Last-Event-ID resumes, heartbeats, CORS, and browsers stay connected through a query
service restart; SIGTERM ends the streams cleanly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp

from tests.gateway.sse import Event, cast, close, events, gateway_url, poll_in_read_model
from tests.harness import Deployment, wait_until

ORIGIN = "https://results.example"


async def next_where(
    stream: AsyncIterator[Event], predicate: Callable[[Event], bool], timeout_s: float
) -> Event:
    async def find() -> Event:
        async for event in stream:
            if predicate(event):
                return event
        raise AssertionError("the stream ended first")

    return await asyncio.wait_for(find(), timeout_s)


def test_votes_stream_live_and_the_final_snapshot_ends_the_stream(running: Deployment) -> None:
    poll_id = poll_in_read_model(running)
    url = gateway_url(running, f"/api/polls/{poll_id}/events")

    async def scenario() -> list[Event]:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            assert response.headers["Cache-Control"] == "no-cache"
            stream = events(response)
            first = await next_where(stream, lambda e: not e.heartbeat, 10)
            assert first.data is not None
            assert first.data["total"] == "0"
            await asyncio.to_thread(cast, running, poll_id, {"a": 2, "c": 1})
            live = await next_where(
                stream, lambda e: e.data is not None and e.data["total"] == "3", 30
            )
            await asyncio.to_thread(close, running, poll_id)
            rest = [e async for e in stream]  # until the server ends the response
            return [first, live, *rest]

    received = asyncio.run(asyncio.wait_for(scenario(), 120))
    versions = [e.id for e in received if e.id is not None]
    assert versions == sorted(set(versions)), "each event is newer than the one before"
    assert all(e.id == int(e.data["version"]) for e in received if e.data is not None)
    final = received[-1]
    assert final.data is not None
    assert final.data["final"] is True
    assert [c["votes"] for c in final.data["counts"]] == ["2", "0", "1"]
    assert final.data["recount"]["matched"] is True

    async def reconnect(last_event_id: int) -> tuple[int, list[Event]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"Last-Event-ID": str(last_event_id)}) as response,
        ):
            return response.status, [e async for e in events(response)]

    assert final.id is not None
    # Resuming just before the final snapshot gets exactly the final snapshot, then the end.
    status, resumed = asyncio.run(asyncio.wait_for(reconnect(final.id - 1), 30))
    assert status == 200
    assert [e.id for e in resumed] == [final.id]
    # Holding the final snapshot already: 204 tells EventSource to stop reconnecting.
    status, nothing = asyncio.run(asyncio.wait_for(reconnect(final.id), 30))
    assert status == 204
    assert nothing == []


def test_quiet_streams_get_heartbeats_and_allowed_origins_get_cors(
    deployment: Deployment,
) -> None:
    deployment.start(
        env={"VOTING_GATEWAY_HEARTBEAT_S": "0.3", "VOTING_GATEWAY_CORS_ORIGINS": ORIGIN}
    )
    poll_id = poll_in_read_model(deployment)
    url = gateway_url(deployment, f"/api/polls/{poll_id}/events")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Origin": ORIGIN}) as response:
                assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
                assert "Origin" in response.headers.getall("Vary")
                stream = events(response)
                started = time.monotonic()
                beats = 0
                async for event in stream:
                    beats += event.heartbeat
                    if beats == 3:
                        break
                assert 0.6 < time.monotonic() - started < 5
            async with session.get(url, headers={"Origin": "https://other.example"}) as response:
                assert response.status == 200
                assert "Access-Control-Allow-Origin" not in response.headers
            results = gateway_url(deployment, f"/api/polls/{poll_id}/results")
            async with session.get(results, headers={"Origin": ORIGIN}) as response:
                assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            preflight = {
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id",
            }
            async with session.options(url, headers=preflight) as response:
                assert response.status == 204
                assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
                assert "Last-Event-ID" in response.headers["Access-Control-Allow-Headers"]
            async with session.get(gateway_url(deployment, "/healthz")) as response:
                assert json.loads(await response.text())["status"] == "SERVING"

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_without_cors_origins_no_cross_origin_header_is_sent(running: Deployment) -> None:
    poll_id = poll_in_read_model(running)

    async def scenario() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                gateway_url(running, f"/api/polls/{poll_id}/results"), headers={"Origin": ORIGIN}
            ) as response,
        ):
            assert response.status == 200
            assert "Access-Control-Allow-Origin" not in response.headers

    asyncio.run(scenario())


def test_browsers_stay_connected_while_the_query_service_restarts(running: Deployment) -> None:
    poll_id = poll_in_read_model(running)
    url = gateway_url(running, f"/api/polls/{poll_id}/events")

    async def health() -> dict[str, int]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(gateway_url(running, "/healthz")) as response,
        ):
            return dict(json.loads(await response.text()))

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            followers = [await session.get(url) for _ in range(3)]
            streams = [events(r) for r in followers]
            for stream in streams:
                await next_where(stream, lambda e: not e.heartbeat, 10)
            state = await health()
            assert (state["polls"], state["subscribers"]) == (1, 3), "one upstream per poll"

            await asyncio.to_thread(running.kill, "query")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(running.restart, "query")
            await asyncio.to_thread(cast, running, poll_id, {"b": 4})
            for stream in streams:  # the same responses: never reconnected
                update = await next_where(
                    stream, lambda e: e.data is not None and e.data["total"] == "4", 30
                )
                assert update.data is not None
            for response in followers:
                response.close()
        await asyncio.sleep(0.5)
        wait_state = await health()
        assert (wait_state["polls"], wait_state["subscribers"]) == (0, 0), "closed by the last"

    asyncio.run(asyncio.wait_for(scenario(), 120))
    assert running.log_count("gateway", "upstream stream interrupted; reconnecting") >= 1


def test_sigterm_ends_every_stream_cleanly_and_the_gateway_exits_0(running: Deployment) -> None:
    poll_id = poll_in_read_model(running)
    url = gateway_url(running, f"/api/polls/{poll_id}/events")

    async def scenario() -> float:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            stream = events(response)
            await next_where(stream, lambda e: not e.heartbeat, 10)
            child = running.stack.children["gateway"]
            asyncio.get_running_loop().call_later(0.2, child.terminate)
            started = time.monotonic()
            async for _ in stream:  # ends without an error: EventSource would reconnect
                pass
            return time.monotonic() - started

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) < 5
    wait_until(lambda: not running.alive("gateway"), timeout_s=15, what="the gateway to exit")
    assert running.stack.children["gateway"].returncode == 0
