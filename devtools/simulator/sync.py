"""Edge-triggered broadcast used to wake waiters (long polls, ``wait_for``) without polling."""

from __future__ import annotations

import asyncio
import time


class Pulse:
    """``fire()`` wakes everyone currently waiting.

    Waiters must take ``current()`` *before* checking their condition and then wait on it; since the
    stand-in is single-threaded (one event loop) no change can slip in between.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()


async def wait_until(event: asyncio.Event, deadline: float) -> bool:
    """Wait for ``event`` until the monotonic ``deadline``; True if it was set."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return event.is_set()
    try:
        async with asyncio.timeout(remaining):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
