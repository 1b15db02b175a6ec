"""How every gRPC server of the project is built, run and stopped.

One :class:`GrpcServer` per process: ``grpc.aio``, the standard health service, server
reflection (``grpcurl`` works without proto files), keepalive, message size limits,
and a graceful stop on SIGTERM/SIGINT: health turns NOT_SERVING first, so load balancers
stop sending, then long-lived streams are ended (``on_drain``) and in-flight RPCs get
``grace_s`` to finish. ``VOTING_HEALTH_LISTEN`` adds a plaintext health-only port for
probes that speak no TLS.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter, Histogram

from voting import status
from voting.config import ServerSettings, TlsSettings
from voting.errors import ConfigError
from voting.introspection import Health, enable_reflection
from voting.tls import server_credentials

log = logging.getLogger(__name__)

# The series names of grpc-ecosystem/go-grpc-prometheus, which dashboards expect.
HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code",
    ["grpc_service", "grpc_method", "grpc_code"],
)
HANDLING = Histogram(
    "grpc_server_handling_seconds",
    "Time to complete an RPC on the server (unary only: streams live as long as they like)",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server", ["grpc_service", "grpc_method"]
)


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every RPC by method and final status code, and times unary ones."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        details = handler_call_details
        # The stubs type handlers as synchronous; on an aio server they hold coroutines.
        handler: Any = await continuation(details)
        if handler is None:
            return None
        service, _, method = details.method.lstrip("/").partition("/")
        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                STARTED.labels(service, method).inc()
                started = time.perf_counter()
                try:
                    return await inner(request, context)
                finally:
                    HANDLING.labels(service, method).observe(time.perf_counter() - started)
                    HANDLED.labels(service, method, _code(context)).inc()

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream: Any = handler.unary_stream

            async def streaming(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                STARTED.labels(service, method).inc()
                try:
                    async for message in stream(request, context):
                        yield message
                finally:
                    HANDLED.labels(service, method, _code(context)).inc()

            return grpc.unary_stream_rpc_method_handler(
                streaming,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        result: grpc.RpcMethodHandler[Any, Any] = handler
        return result


class RequestReadTimeout(grpc.aio.ServerInterceptor):
    """Bounds the wait for a unary-request call's one request message.

    grpc.aio reads that message before it runs the handler, without a timeout, and a
    stream that ends before the message is complete (a length prefix promising 1,000
    bytes, 10 sent, then END_STREAM) is never answered: each such call holds about
    20 KiB until its connection closes, and the peer decides when that is. So unary
    requests are read here, as the first message of a stream: a stream that ends
    without one is INVALID_ARGUMENT at once, one that stalls is DEADLINE_EXCEEDED after
    ``timeout_s``. Outermost, so every other interceptor still sees a unary call.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def _request(self, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):  # no task per call, as wait_for has
                request = await context.read()
        except TimeoutError:
            await status.abort(
                context,
                status.make(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the request message did not arrive within {self._timeout_s:g} s",
                ),
            )
        if request is grpc.aio.EOF:
            await status.abort(
                context,
                status.bad_request([("request", "the stream ended before the request message")]),
            )
        return request

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        original = await continuation(handler_call_details)
        # The stubs type handlers as synchronous; on an aio server they hold coroutines.
        handler: Any = original
        if handler is None or handler.request_streaming:
            return original
        read = self._request
        if not handler.response_streaming:
            unary: Any = handler.unary_unary
            if not inspect.iscoroutinefunction(unary):
                return original

            async def one(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await unary(await read(context), context)

            return grpc.stream_unary_rpc_method_handler(
                one,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        stream: Any = handler.unary_stream
        if not inspect.isasyncgenfunction(stream):
            return original

        async def many(
            requests: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async for message in stream(await read(context), context):
                yield message

        return grpc.stream_stream_rpc_method_handler(
            many,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _code(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "OK"


@dataclass(frozen=True)
class Service:
    """A servicer to host: its full name (for health and reflection) and how to add it."""

    name: str
    register: Callable[[grpc.aio.Server], None]

    @classmethod
    def of(
        cls,
        descriptor: ServiceDescriptor,
        servicer: object,
        *,
        preserialized: frozenset[str] = frozenset(),
    ) -> Service:
        """Hosts ``servicer``'s methods named as in ``descriptor`` (the one way services are
        registered). Requests that do not parse (e.g. invalid UTF-8 in a string field) are
        refused with INVALID_ARGUMENT and BadRequest before the method runs, where gRPC
        alone would answer UNKNOWN. Streaming methods named in ``preserialized`` yield
        bytes already serialized (one snapshot serialized once for many subscribers).
        """
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in descriptor.methods:
            request_type = message_factory.GetMessageClass(method.input_type)
            response_type = message_factory.GetMessageClass(method.output_type)
            implementation = getattr(servicer, method.name)
            decode = _decoder(request_type)
            if method.server_streaming:
                serialize = (
                    bytes if method.name in preserialized else response_type.SerializeToString
                )
                handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                    _checked_stream(implementation),
                    request_deserializer=decode,
                    response_serializer=serialize,
                )
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    _checked_unary(implementation),
                    request_deserializer=decode,
                    response_serializer=response_type.SerializeToString,
                )
        generic = grpc.method_handlers_generic_handler(descriptor.full_name, handlers)
        return cls(descriptor.full_name, lambda server: server.add_generic_rpc_handlers((generic,)))


@dataclass(frozen=True, slots=True)
class _Undecodable:
    error: str


def _decoder(request_type: Any) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return request_type.FromString(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    return decode


def _refusal(bad: _Undecodable) -> Any:
    return status.bad_request([("request", f"not a valid message: {bad.error}")])


def _checked_unary(implementation: Any) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, _Undecodable):
            await status.abort(context, _refusal(request))
        return await implementation(request, context)

    return handle


def _checked_stream(implementation: Any) -> Any:
    async def handle(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        if isinstance(request, _Undecodable):
            await status.abort(context, _refusal(request))
        async for message in implementation(request, context):
            yield message

    return handle


def server_options(settings: ServerSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", int(settings.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
        # What actually closes a connection whose peer stopped answering pings (the
        # default is 60 s whatever the keepalive timeout).
        ("grpc.http2.ping_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_pings_without_data", 0),
        # The defaults (1000 soft / 3000 hard) cancel new streams when a few thousand
        # watchers connect at once; the limit that matters is maximum_concurrent_rpcs.
        ("grpc.server.max_pending_requests", 100_000),
        ("grpc.server.max_pending_requests_hard_limit", 200_000),
        ("grpc.so_reuseport", 1),
    ]


class GrpcServer:
    def __init__(
        self,
        *,
        listen: str,
        settings: ServerSettings,
        tls: TlsSettings | None = None,
        services: Sequence[Service] = (),
        on_drain: Callable[[], Awaitable[None]] | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.listen = listen
        self.settings = settings
        self.tls = tls
        self.services = list(services)
        self.health = Health()
        self._on_drain = on_drain
        self._on_stop = on_stop
        self._server: grpc.aio.Server | None = None
        self._probe_server: grpc.aio.Server | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[
                RequestReadTimeout(self.settings.request_read_timeout_s),
                MetricsInterceptor(),
            ],
            options=server_options(self.settings),
            maximum_concurrent_rpcs=self.settings.max_concurrent_rpcs or None,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        for service in self.services:
            service.register(server)
        names = [s.name for s in self.services]
        enable_reflection(server, names)
        credentials = server_credentials(self.tls) if self.tls is not None else None
        _bind(server, self.listen, credentials)
        if self.settings.health_listen:
            # Health alone, in plaintext: the kubelet's gRPC probe speaks no TLS, and
            # health tells nothing a port scan would not.
            probe_server = grpc.aio.server(options=server_options(self.settings))
            health_pb2_grpc.add_HealthServicer_to_server(self.health, probe_server)
            _bind(probe_server, self.settings.health_listen, None)
            await probe_server.start()
            self._probe_server = probe_server
        await server.start()
        self._server = server
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"listen": self.listen, "services": names})

    async def stop(self) -> None:
        if self._server is None or self._stopped.is_set():
            return
        self._stopped.set()
        await self.health.enter_graceful_shutdown()
        if self._on_drain is not None:
            await self._on_drain()  # long-lived streams end now; they would outlast any grace
        await self._server.stop(self.settings.grace_s)
        if self._probe_server is not None:
            await self._probe_server.stop(None)
        if self._on_stop is not None:
            await self._on_stop()
        log.info("stopped", extra={"listen": self.listen})

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *(s.name for s in self.services)]:
            await self.health.set(name, status)

    async def serve_while(self, work: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        """Starts, then runs ``work(stop)`` (a consumer loop) until it returns or SIGTERM or
        SIGINT arrives; then ``stop`` is set, health turns NOT_SERVING, the work finishes
        what it holds (commits, leaves its group), and the server stops."""
        stop = asyncio.Event()
        await self.start()
        task = asyncio.create_task(work(stop))
        stopper = asyncio.create_task(wait_for_stop_signal())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await self.set_serving(False)
        await task
        stopper.cancel()
        await self.stop()

    async def serve_until_signal(self) -> None:
        """Starts, then stops gracefully on the first SIGTERM or SIGINT."""
        await self.start()
        await wait_for_stop_signal()
        await self.stop()


def _bind(server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials | None) -> None:
    try:
        if credentials is None:
            server.add_insecure_port(listen)
        else:
            server.add_secure_port(listen, credentials)
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc} (is the port taken?)") from exc


async def wait_for_stop_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
