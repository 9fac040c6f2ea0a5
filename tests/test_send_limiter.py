"""The limiter every Telegram call goes through (bot/outbox/limiter.py): calls that name a chat are held to
the overall rate, in the order they came, except that a call made in `urgent()` (a crisis reply, a page)
goes before every ordinary one still waiting; calls without a chat are not held.

The limiter's clock is frozen and moved by hand: what is asserted is the order calls go out, never a time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.outbox import limiter as limits


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


async def _call(limiter: limits.SendLimiter, gone: list[str], name: str, chat_id: int | None) -> None:
    async def callback() -> dict[str, Any]:
        gone.append(name)
        return {}

    data: dict[str, Any] = {} if chat_id is None else {"chat_id": chat_id}
    await limiter.process_request(callback, (), {}, "sendMessage", data, None)


async def _until(condition: Any, clock: _Clock | None = None) -> None:
    """Until `condition` holds, moving the clock on a hundredth of a second at a time if given one."""
    for _ in range(2000):
        if condition():
            return
        if clock is not None:
            clock.now += 0.01
        await asyncio.sleep(0.001)
    raise AssertionError("not reached")


async def test_an_urgent_call_goes_before_the_ordinary_calls_waiting_for_the_rate(clock: _Clock) -> None:
    limiter = limits.SendLimiter(100, burst=1, clock=clock)
    gone: list[str] = []
    await _call(limiter, gone, "first", 1)  # the bucket is full now, and the clock stands still
    waiting = [asyncio.create_task(_call(limiter, gone, f"reply {n}", 10 + n)) for n in range(3)]
    await _until(lambda: len(limiter._waiting[False]) == 3)

    async def crisis_reply() -> None:
        with limits.urgent():
            await _call(limiter, gone, "crisis reply", 2)

    crisis = asyncio.create_task(crisis_reply())
    await _until(lambda: len(limiter._waiting[True]) == 1)
    assert gone == ["first"]
    await _until(lambda: len(gone) == 5, clock)
    await asyncio.gather(crisis, *waiting)
    assert gone == ["first", "crisis reply", "reply 0", "reply 1", "reply 2"]
    await limiter.shutdown()


async def test_a_call_without_a_chat_is_not_held_and_urgency_ends_with_its_block(clock: _Clock) -> None:
    limiter = limits.SendLimiter(100, burst=1, clock=clock)
    gone: list[str] = []
    await _call(limiter, gone, "first", 1)
    waiting = asyncio.create_task(_call(limiter, gone, "reply", 10))
    await _until(lambda: len(limiter._waiting[False]) == 1)
    await _call(limiter, gone, "getUpdates", None)  # the clock has not moved: it went through at once
    assert gone == ["first", "getUpdates"]
    with limits.urgent():
        assert limits.is_urgent()
        with limits.urgent(False):
            assert not limits.is_urgent()
    assert not limits.is_urgent()
    await _until(lambda: waiting.done(), clock)
    assert gone == ["first", "getUpdates", "reply"]
    await limiter.shutdown()


async def test_calls_still_waiting_at_shutdown_go_ahead_rather_than_hang(clock: _Clock) -> None:
    limiter = limits.SendLimiter(100, burst=1, clock=clock)
    gone: list[str] = []
    await _call(limiter, gone, "first", 1)  # the bucket is full, and the clock stands still
    waiting = asyncio.create_task(_call(limiter, gone, "crisis reply", 2))
    await _until(lambda: len(limiter._waiting[False]) == 1)
    await limiter.shutdown()
    async with asyncio.timeout(5):
        await waiting
    assert gone == ["first", "crisis reply"]
