"""The HTTP face of the gateway: the results page, JSON and Server-Sent Events.

::

    GET /                              the results page (lists recent polls)
    GET /polls/{id}                    the results page of one poll
    GET /api/polls                     ListPolls             (?page_size=&page_token=)
    GET /api/polls/{id}                GetPoll
    GET /api/polls/{id}/results        GetResults (ETag per version, If-None-Match -> 304,
                                       Cache-Control for a CDN: short while open, a day
                                       once FINAL)
    GET /api/polls/{id}/events         WatchResults as SSE   (honours Last-Event-ID)
    GET /healthz                       200 while the QueryService answers its health check

Every answer comes from the QueryService; the gateway adds no rule of its own.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11

from gateway.admission import Admission
from gateway.encoding import HEARTBEAT, last_event_id, to_json
from gateway.errors import UpstreamError
from gateway.hub import PollStream, ResultsHub, Snapshot
from gateway.query import QueryClient
from voting.config import GatewaySettings
from voting.v1 import results_pb2

STATIC_DIR = Path(__file__).resolve().parent / "static"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # Reverse proxies (nginx) would otherwise buffer the stream.
    "X-Accel-Buffering": "no",
}


class Gateway:
    def __init__(self, *, client: QueryClient, hub: ResultsHub, settings: GatewaySettings) -> None:
        self.client = client
        self.hub = hub
        self.settings = settings
        self.admission = Admission(self._check)
        self.stopping = False

    async def _check(self, poll_id: str, authorization: str | None) -> object:
        return await self.client.results(poll_id, authorization)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/polls/{poll_id}", self.page)
        app.router.add_static("/static/", STATIC_DIR)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/polls", self.list_polls)
        app.router.add_get("/api/polls/{poll_id}", self.poll)
        app.router.add_get("/api/polls/{poll_id}/results", self.results)
        app.router.add_get("/api/polls/{poll_id}/events", self.events)
        if self.settings.cors_origins:
            app.router.add_route("OPTIONS", "/api/{tail:.*}", self.preflight)
            app.on_response_prepare.append(self._cors_headers)
        app.on_shutdown.append(self._shutdown)
        return app

    async def page(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def healthz(self, _: web.Request) -> web.Response:
        serving = not self.stopping and await self.client.serving()
        return web.json_response(
            {
                "status": "SERVING" if serving else "NOT_SERVING",
                "query_service": self.client.target,
                "polls": self.hub.polls,
                "subscribers": self.hub.subscribers,
            },
            status=200 if serving else 503,
        )

    async def list_polls(self, request: web.Request) -> web.Response:
        try:
            page_size = int(request.query.get("page_size", "0"))
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "page_size: a number")
        try:
            reply = await self.client.list_polls(
                page_size=page_size,
                page_token=request.query.get("page_token", ""),
                authorization=_auth(request),
            )
        except UpstreamError as exc:
            return _refused(exc)
        return _json(to_json(reply))

    async def poll(self, request: web.Request) -> web.Response:
        try:
            poll = await self.client.poll(request.match_info["poll_id"], _auth(request))
            return _json(to_json(poll))
        except UpstreamError as exc:
            return _refused(exc)

    async def results(self, request: web.Request) -> web.Response:
        """Results with an ETag per version: a client or CDN that holds the current
        version gets 304 and no body, so pollers behind an edge cost the origin about one
        request per version per edge."""
        authorization = _auth(request)
        try:
            results = await self.client.results(request.match_info["poll_id"], authorization)
        except UpstreamError as exc:
            return _refused(exc)
        headers = {
            "ETag": results_etag(results),
            "Cache-Control": results_cache_control(
                results,
                private=authorization is not None,
                max_age_s=self.settings.results_max_age_s,
            ),
        }
        if matches(request.headers.get("If-None-Match"), headers["ETag"]):
            return web.Response(status=304, headers=headers)
        return web.Response(text=to_json(results), content_type="application/json", headers=headers)

    async def events(self, request: web.Request) -> web.StreamResponse:
        held = last_event_id(request.headers.get("Last-Event-ID"))
        if self.hub.subscribers >= self.settings.max_followers:
            refused = _error(
                503, "UNAVAILABLE", "this gateway process follows as many browsers as it may"
            )
            refused.headers["Retry-After"] = "1"
            return refused
        try:
            # The query service decides whether this browser may follow the poll; the
            # stream it then joins is shared by every browser following it.
            await self.admission.admit(request.match_info["poll_id"], _auth(request))
            async with self.hub.subscription(request.match_info["poll_id"]) as stream:
                first = await stream.ready()
                if first.final and first.version <= held:
                    # The browser holds the final snapshot: 204 tells EventSource to stop
                    # reconnecting.
                    return web.Response(status=204)
                return await self._follow(request, stream, held, first)
        except UpstreamError as exc:
            return _refused(exc)

    async def _follow(
        self, request: web.Request, stream: PollStream, held: int, first: Snapshot
    ) -> web.StreamResponse:
        """Hands the connection to the poll's broadcaster once aiohttp has sent the
        headers and the first event; aiohttp writes the end of the response."""
        response = web.StreamResponse(headers=SSE_HEADERS)
        chunked = request.version >= HttpVersion11
        if chunked:
            response.enable_chunked_encoding()
        await response.prepare(request)
        # Through aiohttp, so the headers go out with it; from here on the broadcaster
        # writes pre-framed bytes to the transport, in order behind these.
        await response.write(first.event if first.version > held else HEARTBEAT)
        shown = max(held, first.version)
        transport = request.transport
        if first.final or transport is None:
            await _end(response)
            return response
        follower = stream.follow(transport, shown=shown, chunked=chunked)
        try:
            await follower.ended
        finally:
            stream.unfollow(follower)
        await _end(response)
        return response

    async def preflight(self, request: web.Request) -> web.Response:
        response = web.Response(status=204)
        if self._allowed_origin(request) is not None:
            response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Last-Event-ID"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    async def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = self._allowed_origin(request)
        if origin is not None and request.path.startswith("/api/"):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")

    def _allowed_origin(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        allowed = self.settings.cors_origins
        if "*" in allowed:
            return "*"
        return origin if origin in allowed else None

    async def _shutdown(self, _: web.Application) -> None:
        self.stopping = True
        await self.hub.close()


FINAL_MAX_AGE_S = 86_400


def results_etag(results: results_pb2.Results) -> str:
    """One tag per version of a poll's results (and its final form). Weak: two reads of
    one version differ in ``staleness``, which is measured at each read, so they are
    equivalent, not byte for byte the same; If-None-Match compares weakly anyway."""
    final = "-final" if results.final else ""
    return f'W/"{results.poll_id}-{results.version}{final}"'


def results_cache_control(results: results_pb2.Results, *, private: bool, max_age_s: int) -> str:
    """Final results never change: any cache may keep them. During a poll, a short
    max-age. Results read with a browser's own token are for that browser alone."""
    scope = "private" if private else "public"
    if results.final:
        return f"{scope}, max-age={FINAL_MAX_AGE_S}, immutable"
    return f"{scope}, max-age={max_age_s}, must-revalidate"


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal to ``etag`` by weak
    comparison (the W/ prefix ignored on both sides)."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


async def _end(response: web.StreamResponse) -> None:
    with contextlib.suppress(ConnectionResetError):  # the browser left
        await response.write_eof()


def _auth(request: web.Request) -> str | None:
    """The browser's Authorization header, passed through untouched."""
    return request.headers.get("Authorization")


def _json(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


def _refused(exc: UpstreamError) -> web.Response:
    return web.json_response(exc.body(), status=exc.http_status)


def _error(status: int, code: str, message: str) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    return web.json_response(body, status=status)
