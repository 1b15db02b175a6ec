"""Token bucket semantics (the per-process buckets used while Redis is away)."""

from __future__ import annotations

import asyncio
import time

import pytest

from command_svc.ratelimit import TokenBuckets

pytestmark = pytest.mark.unit


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    buckets = TokenBuckets(None, prefix="t", rate=2.0, burst=3.0)
    waits = asyncio.run(buckets.take([("voter:a", 1)] * 5))
    assert waits[:3] == [0, 0, 0]
    assert 0 < waits[3] <= 500  # one token refills in 1/rate = 500 ms
    assert waits[4] > 0
    assert asyncio.run(buckets.take([("voter:b", 1)])) == [0], "buckets are per key"


def test_a_bucket_refills_at_its_rate() -> None:
    buckets = TokenBuckets(None, prefix="t", rate=20.0, burst=1.0)
    assert asyncio.run(buckets.take([("k", 1)])) == [0]
    assert asyncio.run(buckets.take([("k", 1)]))[0] > 0
    time.sleep(0.06)
    assert asyncio.run(buckets.take([("k", 1)])) == [0]


def test_a_refused_take_takes_nothing() -> None:
    buckets = TokenBuckets(None, prefix="t", rate=1.0, burst=5.0)
    assert asyncio.run(buckets.take([("k", 6)]))[0] > 0
    assert asyncio.run(buckets.take([("k", 5)])) == [0]


def test_a_zero_rate_means_no_limit() -> None:
    buckets = TokenBuckets(None, prefix="t", rate=0.0, burst=1.0)
    assert asyncio.run(buckets.take([("k", 1000)] * 3)) == [0, 0, 0]
