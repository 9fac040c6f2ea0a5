"""Telegram-like flood limits as token buckets: one global, one per chat (groups: per minute).

A send is admitted only if *every* bucket it draws from has a whole token; otherwise nothing is
consumed and the call gets 429 with ``retry_after`` = whole seconds until it would be admitted (>= 1),
as Telegram reports it. Buckets refill continuously, so over any window T at most
``rate * T + burst`` sends pass: a benchmark sending N messages can rely on the configured rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SEND_METHODS = frozenset(
    {
        "sendmessage", "sendphoto", "senddocument", "sendaudio", "sendvoice", "sendvideo", "sendanimation",
        "sendsticker", "sendlocation", "sendcontact", "sendpoll", "senddice", "sendmediagroup",
        "copymessage", "forwardmessage", "copymessages", "forwardmessages", "sendvideonote", "sendvenue",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RateLimit:
    """Flood limits. Defaults follow Telegram's documented guidance for bots."""

    global_per_s: float = 30.0
    per_chat_per_s: float = 1.0
    burst: int = 3
    """Bucket size of a private chat: a few quick messages pass, then 1 per second."""
    global_burst: int | None = None
    """Bucket size of the global limit; None = one second's worth (``ceil(global_per_s)``)."""
    group_per_min: float = 20.0
    """Groups/supergroups (negative chat ids): 20 messages per minute, bucket of the same size."""
    methods: frozenset[str] = field(default=SEND_METHODS)
    """Lower-cased Bot API methods that count as sends."""

    def __post_init__(self) -> None:
        if self.global_per_s <= 0 or self.per_chat_per_s <= 0 or self.group_per_min <= 0 or self.burst < 1:
            raise ValueError("rates must be > 0 and burst >= 1")


class TokenBucket:
    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_needed(self) -> float:
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        now = clock()
        global_burst = limit.global_burst if limit.global_burst is not None else math.ceil(limit.global_per_s)
        self._global = TokenBucket(limit.global_per_s, max(1, global_burst), now)
        self._chats: dict[int, TokenBucket] = {}
        self.rejected = 0

    def applies_to(self, method: str) -> bool:
        return method.lower() in self.limit.methods

    def _chat_bucket(self, chat_id: int, now: float) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if chat_id < 0:
                size = max(1.0, math.floor(self.limit.group_per_min))
                bucket = TokenBucket(self.limit.group_per_min / 60.0, size, now)
            else:
                bucket = TokenBucket(self.limit.per_chat_per_s, self.limit.burst, now)
            self._chats[chat_id] = bucket
        return bucket

    def acquire(self, chat_id: int | None) -> int:
        """0 if the send may go now (tokens taken), else the retry_after in whole seconds."""
        now = self.clock()
        buckets = [self._global]
        if chat_id is not None:
            buckets.append(self._chat_bucket(chat_id, now))
        for bucket in buckets:
            bucket.refill(now)
        wait = max(bucket.wait_needed() for bucket in buckets)
        if wait > 0:
            self.rejected += 1
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1.0
        return 0

    def refund(self, chat_id: int | None) -> None:
        """Give back the tokens of an admitted call that then failed validation (nothing was sent)."""
        self._global.tokens = min(self._global.capacity, self._global.tokens + 1.0)
        if chat_id is not None and chat_id in self._chats:
            bucket = self._chats[chat_id]
            bucket.tokens = min(bucket.capacity, bucket.tokens + 1.0)
