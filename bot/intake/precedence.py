"""Urgent work under way in this process (a crisis message's turn, then its reply and page being claimed and
sent): the other chats' next turns give way to it, for a moment at most.

When the long-polling intake catches up with a flood, dozens of chats' turns start together. A crisis turn
sharing the event loop and the database with them took 0.6 to 1.2 s on PostgreSQL, and its reply's claim and
send another 0.5 s, where each takes a fraction of that alone (bench/crisis_latency.py, issue 17)."""

from __future__ import annotations

import asyncio
import contextlib
import time


class Precedence:
    """A count of urgent work under way: `take` when a piece begins, `give` when it ends (once each)."""

    def __init__(self) -> None:
        self._holds = 0
        self._since = 0.0  # when the current stretch of urgent work began
        self._clear = asyncio.Event()
        self._clear.set()

    @property
    def held(self) -> bool:
        return self._holds > 0

    def take(self) -> None:
        if not self._holds:
            self._since = time.monotonic()
        self._holds += 1
        self._clear.clear()

    def give(self) -> None:
        self._holds = max(0, self._holds - 1)
        if not self._holds:
            self._clear.set()

    async def give_way(self, seconds: float) -> None:
        """Wait until no urgent work is under way, or until the stretch of it has lasted `seconds`: urgent
        work stuck on a slow database or a slow Telegram answer holds the others up once, that long at
        most, never for good."""
        if not self._holds:
            return
        left = self._since + seconds - time.monotonic()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._clear.wait()
