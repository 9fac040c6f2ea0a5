"""The outbox's sender when the database refuses its claims: it backs off, never a tight loop of errors.

The real clock is never read: the sender's `utcnow` is fixed and moved by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.core import db
from bot.core.config import Settings
from bot.outbox import dispatcher as sender
from bot.outbox import store as outbox
from bot.runtime import Runtime

T0 = datetime(2027, 3, 8, 15, 0, tzinfo=UTC)


@pytest.fixture
async def runtime(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Runtime]:
    made = Runtime.create(settings)
    yield made
    await made.engine.dispose()


async def test_claims_the_database_refuses_are_retried_after_a_growing_backoff(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.transaction(runtime.sessions) as session:
        await outbox.enqueue(
            session, [outbox.Planned("due", "notice", 42, "text", T0 - timedelta(minutes=1))]
        )
    now = [T0]
    monkeypatch.setattr(sender, "utcnow", lambda: now[0])
    claims: list[datetime] = []
    refusing = True

    async def claim(*args: Any, **kwargs: Any) -> list[outbox.Claimed]:
        claims.append(now[0])
        if refusing:
            raise RuntimeError("the database said no")
        return []

    monkeypatch.setattr(outbox, "claim", claim)
    dispatcher = sender.Dispatcher(runtime, cast(Bot, None))
    wakes: list[datetime] = []
    dispatcher.on_wake(wakes.append)

    await dispatcher.drain()  # refused: the next try is after the backoff, not at once (the row is due)
    assert claims == [T0] and wakes == [T0 + timedelta(seconds=0.5)]
    dispatcher.wake()  # a fresh alert: the scheduler runs `drain` now...
    assert wakes[-1] == T0
    await dispatcher.drain()  # ...which claims nothing yet and keeps the appointment
    assert claims == [T0] and wakes[-1] == T0 + timedelta(seconds=0.5)
    now[0] = T0 + timedelta(seconds=0.5)
    await dispatcher.drain()  # refused again: it waits twice as long
    assert claims == [T0, now[0]] and wakes[-1] == now[0] + timedelta(seconds=1)
    for _ in range(10):  # and so on, up to ten seconds
        now[0] = wakes[-1]
        await dispatcher.drain()
    assert wakes[-1] - now[0] == sender.CLAIM_BACKOFF_MAX
    assert len(claims) == 12
    refusing = False  # the database is back: no more waiting
    now[0] = wakes[-1]
    await dispatcher.drain()
    await dispatcher.drain()
    assert claims[-2:] == [now[0], now[0]]
