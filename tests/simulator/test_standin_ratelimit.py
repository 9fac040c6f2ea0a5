"""The flood-limit token buckets, on a fake clock: exact enough for "N messages at R/s" benchmarks."""

from __future__ import annotations

import itertools

import pytest

from devtools.simulator import RateLimit
from devtools.simulator.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_global_rate_is_exact_over_a_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(global_per_s=30, per_chat_per_s=1e6, burst=10**6), clock)
    admitted_at: list[float] = []
    for step in range(10_000):  # 10 s of a client hammering every millisecond, across many chats
        clock.now = 1000.0 + step / 1000
        if limiter.acquire(step % 500 + 1) == 0:
            admitted_at.append(clock.now)
    # the default global bucket holds one second's worth: 30 at once, then exactly 30/s
    assert 329 <= len(admitted_at) <= 330
    for i, start in enumerate(admitted_at):  # no one-second window ever sees more than rate + burst
        assert sum(1 for t in admitted_at[i:] if t < start + 1.0) <= 60
    steady = [t for t in admitted_at if t >= 1001.0]
    assert abs(len(steady) - 9 * 30) <= 1


def test_a_one_token_bucket_never_exceeds_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(global_per_s=30, global_burst=1, per_chat_per_s=1e6, burst=10**6), clock)
    admitted_at: list[float] = []
    for step in range(10_000):
        clock.now = 1000.0 + step / 1000
        if limiter.acquire(step % 500 + 1) == 0:
            admitted_at.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(admitted_at)]
    assert min(gaps) >= 1 / 30 - 1e-9  # never two sends closer than 1/R
    assert 290 <= len(admitted_at) <= 301  # 1 ms arrival granularity rounds each gap up a little


def test_per_chat_burst_then_steady_rate_and_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(global_per_s=1000, per_chat_per_s=1, burst=3), clock)
    assert [limiter.acquire(7) for _ in range(4)] == [0, 0, 0, 1]
    assert limiter.acquire(8) == 0  # other chats have their own bucket
    clock.now += 0.5
    assert limiter.acquire(7) == 1  # still half a token short: Telegram rounds up to whole seconds
    clock.now += 0.5
    assert limiter.acquire(7) == 0
    assert limiter.rejected == 2


def test_groups_get_20_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(), clock)
    results = [limiter.acquire(-100500) for _ in range(21)]
    assert results[:20] == [0] * 20 and results[20] == 3  # one message per 3 s after the burst


def test_refund_and_validation() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(global_per_s=1, global_burst=1), clock)
    assert limiter.acquire(1) == 0
    limiter.refund(1)
    assert limiter.acquire(1) == 0
    assert limiter.applies_to("sendMessage") and not limiter.applies_to("sendChatAction")
    with pytest.raises(ValueError):
        RateLimit(global_per_s=0)
