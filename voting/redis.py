"""Redis clients of the read side.

Clients fail fast: redis-py retries a failed connection for seconds by default, which
would turn "Redis is down" into slow queries instead of a quick UNAVAILABLE. Code that
wants to wait for Redis (the projector) retries by itself, with backoff.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from voting.config import RedisSettings


def client(settings: RedisSettings, *, timeout_s: float | None = None) -> aioredis.Redis:
    timeout = settings.socket_timeout_s if timeout_s is None else timeout_s
    return aioredis.Redis.from_url(
        settings.url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=min(timeout, 1.0),
        socket_timeout=timeout,
        health_check_interval=5,
    )


def pubsub_client(settings: RedisSettings) -> aioredis.Redis:
    """A client for long-lived subscriptions: no read timeout on the socket."""
    return aioredis.Redis.from_url(
        settings.url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=1.0,
        socket_timeout=None,
        health_check_interval=5,
    )


def text(value: object) -> str:
    """A Redis reply as text (clients here do not decode responses)."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


def raw(value: object) -> bytes:
    """A Redis reply as bytes."""
    if isinstance(value, bytes):
        return value
    return b"" if value is None else str(value).encode()
