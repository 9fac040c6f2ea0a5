"""The one limiter every Telegram call goes through (`Application.rate_limiter`), with an urgent lane.

Every call that names a chat is held to the overall rate (SEND_RATE_PER_SECOND; a burst of up to a second's
worth, then that many a second, as PTB's AIORateLimiter did); a group's calls also to 20 a minute. It never
retries: a 429 for one chat must not pause the calls for everyone (the outbox waits per chat).

The urgent lane: a call made inside `urgent()` (a crisis reply, a page) goes before every call still waiting
that is not. Without it, the crisis reply joined the back of one queue with everyone else's replies: when
the long-polling intake caught up with a flood, the other patients' replies that had waited behind it went
out together, and the crisis reply waited about a second behind them (issue 17, bench/crisis_latency.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import BaseRateLimiter

JSONDict = dict[str, Any]
GROUP_RATE = (20, 60.0)  # calls to one group or channel: that many per that many seconds (Telegram's limit)

_URGENT: ContextVar[bool] = ContextVar("urgent_send", default=False)


@contextlib.contextmanager
def urgent(on: bool = True) -> Iterator[None]:
    """Telegram calls made inside go through the urgent lane (when `on`)."""
    token = _URGENT.set(on)
    try:
        yield
    finally:
        _URGENT.reset(token)


def is_urgent() -> bool:
    return _URGENT.get()


class SendLimiter(BaseRateLimiter[None]):
    """A leaky bucket of `burst` calls (default: a second's worth) that empties at `rate` a second; those
    waiting for room are let through urgent first, then in the order they came."""

    def __init__(
        self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._capacity = max(1.0, rate if burst is None else burst)
        self._clock = clock
        self._level = 0.0  # calls in the bucket
        self._stamp = clock()  # when `_level` was last leaked
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}
        self._pump: asyncio.Task[None] | None = None
        self._groups: dict[int | str, AsyncLimiter] = {}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        # A call still waiting goes ahead rather than hang for ever (a crisis reply among them): the last
        # few calls of a process may exceed the rate, Telegram answers 429 to any that do.
        for lane in self._waiting.values():
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | JSONDict | list[JSONDict]:
        chat_id = data.get("chat_id")
        if chat_id is None:  # getUpdates, answerCallbackQuery, ...: not counted, as with AIORateLimiter
            return await callback(*args, **kwargs)
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)
        group = chat_id if (isinstance(chat_id, int) and chat_id < 0) or isinstance(chat_id, str) else None
        async with self._group(group):
            await self._acquire(is_urgent())
            return await callback(*args, **kwargs)

    def _group(self, group: int | str | None) -> contextlib.AbstractAsyncContextManager[Any]:
        if group is None:
            return contextlib.nullcontext()
        limiter = self._groups.get(group)
        if limiter is None:
            if len(self._groups) >= 1024:  # groups only ever get a line saying the bot is for private chats
                self._groups.clear()
            limiter = self._groups[group] = AsyncLimiter(*GROUP_RATE)
        return limiter

    def _leak(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._stamp) * self._rate)
        self._stamp = now

    def _room(self) -> bool:
        self._leak()
        return self._level + 1 <= self._capacity

    async def _acquire(self, urgent: bool) -> None:
        # Go at once if there is room and nobody this call must not overtake is waiting.
        ahead = self._waiting[True] if urgent else (self._waiting[True] or self._waiting[False])
        if not ahead and self._room():
            self._level += 1
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiting[urgent].append(granted)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._let_through(), name="send-limiter")
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._level -= 1  # let through, but its caller is gone: the room is someone else's
            raise

    async def _let_through(self) -> None:
        """Let the waiting through as room comes free, urgent first."""
        while True:
            for lane in self._waiting.values():
                while lane and lane[0].done():  # their callers were cancelled
                    lane.popleft()
            first = self._waiting[True] or self._waiting[False]
            if not first:
                return
            if self._room():
                self._level += 1
                first.popleft().set_result(None)
                continue
            await asyncio.sleep((self._level + 1 - self._capacity) / self._rate)
