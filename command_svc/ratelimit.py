"""Rate limits per voter and per client: token buckets shared through Redis.

Semantics: a bucket holds up to ``burst`` tokens and refills at ``rate`` per second. A
vote takes one token from its voter's bucket (checked after authorization, so nobody
can drain another voter's bucket) and one from its caller's bucket (a CastVotes of n
votes takes n at once). A vote that finds its bucket short is refused with
RESOURCE_EXHAUSTED and a RetryInfo saying when the tokens will be there.

The buckets live in Redis so every command process shares them. When Redis does not
answer, each process falls back to buckets of its own (same rates, per process) for a
few seconds before trying Redis again: limits degrade, writes go on.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_SCRIPT = resources.files("command_svc").joinpath("token_bucket.lua").read_text()
FALLBACK_S = 5.0
LOCAL_BUCKETS = 100_000


class TokenBuckets:
    def __init__(
        self, client: aioredis.Redis | None, *, prefix: str, rate: float, burst: float
    ) -> None:
        self._redis = client
        self._script = client.register_script(_SCRIPT) if client is not None else None
        self._prefix = prefix
        self.rate = rate
        self.burst = burst
        self._local: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._redis_down_until = 0.0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    async def take(self, requests: Sequence[tuple[str, int]]) -> list[int]:
        """For each (bucket, cost): 0 if taken, else milliseconds to wait."""
        if not self.enabled or not requests:
            return [0] * len(requests)
        now_ms = int(time.time() * 1000)
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            try:
                waits = await self._script(
                    keys=[f"{self._prefix}:{key}" for key, _ in requests],
                    args=[now_ms, self.rate, self.burst, *(cost for _, cost in requests)],
                )
                return [int(w) for w in waits]
            except (RedisError, OSError) as exc:
                log.warning(
                    "rate limits fall back to this process: Redis unavailable",
                    extra={"error": str(exc)},
                )
                self._redis_down_until = time.monotonic() + FALLBACK_S
        return [self._take_local(key, cost, now_ms) for key, cost in requests]

    def _take_local(self, key: str, cost: int, now_ms: int) -> int:
        tokens, last = self._local.pop(key, (self.burst, now_ms))
        tokens = min(self.burst, tokens + max(0, now_ms - last) * self.rate / 1000)
        wait = 0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = int(-(-(cost - tokens) * 1000 // self.rate))
        self._local[key] = (tokens, now_ms)
        while len(self._local) > LOCAL_BUCKETS:
            self._local.popitem(last=False)
        return wait
