"""The outbox's sender when the database refuses its claims: it backs off, never a tight loop of errors.

The real clock is never read: the sender's `utcnow` is fixed and moved by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot

from bot.core import db
from bot.core.config import Settings
from bot.core.models import Priority
from bot.core.models import utcnow as db_now
from bot.outbox import dispatcher as sender
from bot.outbox import limiter
from bot.outbox import store as outbox
from bot.privacy.erasure import erase_patient
from bot.runtime import Runtime
from tests.records import add_counselor, add_patient

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


class _HangingBot:
    """Sends at once, except to `slow_chat`, whose send hangs until `release` is set."""

    def __init__(self, slow_chat: int) -> None:
        self.slow_chat = slow_chat
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.sent: list[int] = []
        self.urgent_sent = asyncio.Event()

    async def send_message(self, chat_id: int, text: str, **kwargs: object) -> SimpleNamespace:
        if chat_id == self.slow_chat:
            self.slow_started.set()
            await self.release.wait()
        self.sent.append(chat_id)
        if chat_id != self.slow_chat:
            self.urgent_sent.set()
        return SimpleNamespace(message_id=len(self.sent))


async def test_a_row_enqueued_while_a_send_hangs_is_claimed_and_sent_as_soon_as_the_sender_is_woken(
    runtime: Runtime,
) -> None:
    bot = _HangingBot(slow_chat=41)
    now = db_now()
    async with db.transaction(runtime.sessions) as session:
        await outbox.enqueue(session, [outbox.Planned("slow", "notice", 41, "text", now)])
    dispatcher = sender.Dispatcher(runtime, cast(Bot, bot))
    draining = asyncio.create_task(dispatcher.drain())
    try:
        await asyncio.wait_for(bot.slow_started.wait(), 30)  # the first send is under way and hangs
        async with db.transaction(runtime.sessions) as session:
            await outbox.enqueue(
                session,
                [outbox.Planned("crisis", "urgent_reply", 42, "988", db_now(), priority=Priority.URGENT)],
            )
        dispatcher.wake()
        await asyncio.wait_for(bot.urgent_sent.wait(), 30)
        assert bot.sent == [42]  # sent while the other send still hangs, not after it
    finally:
        bot.release.set()
        await asyncio.wait_for(draining, 30)
    assert bot.sent == [42, 41]


class _RecordingBot:
    def __init__(self) -> None:
        self.sent: list[int] = []

    async def send_message(self, chat_id: int, text: str, **kwargs: object) -> SimpleNamespace:
        self.sent.append(chat_id)
        return SimpleNamespace(message_id=len(self.sent))


async def test_a_row_claimed_before_the_patients_erasure_is_not_sent_after_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/deleteme right after /mydata: a message to the patient, claimed by the sender, waits for its chat's
    pace (up to seconds) when the erasure commits. It is not sent afterwards: nothing more reaches them."""
    counselor = await add_counselor(runtime.sessions, "Sam")
    patient = await add_patient(runtime.sessions, counselor=counselor)
    other = await add_patient(runtime.sessions, counselor=counselor)
    async with db.transaction(runtime.sessions) as session:
        await outbox.enqueue(
            session,
            [
                outbox.Planned(key, "notice", who.chat_id, "text", db_now(), patient_id=who.id)
                for key, who in (("theirs", patient), ("another", other))
            ],
        )
    bot = _RecordingBot()
    dispatcher = sender.Dispatcher(runtime, cast(Bot, bot))
    pace = dispatcher._pace

    async def erased_while_waiting_for_the_pace(chat_id: int) -> None:
        await pace(chat_id)
        if chat_id == patient.chat_id:  # claimed and about to be sent: the erasure commits now
            async with db.transaction(runtime.sessions) as session:
                await erase_patient(session, patient.id, reason="request")

    monkeypatch.setattr(dispatcher, "_pace", erased_while_waiting_for_the_pace)
    assert await dispatcher.drain() == 2  # both were claimed
    assert bot.sent == [other.chat_id]  # the other patient's went out; the erased one's did not


class _LaneBot:
    """Records, for each chat sent to, whether the send was made in the limiter's urgent lane, and whether
    the other chats' turns were giving way meanwhile."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.lanes: dict[int, tuple[bool, bool]] = {}

    async def send_message(self, chat_id: int, text: str, **kwargs: object) -> SimpleNamespace:
        self.lanes[chat_id] = (limiter.is_urgent(), self.runtime.precedence.held)
        return SimpleNamespace(message_id=len(self.lanes))


async def test_a_crisis_reply_goes_in_the_urgent_lane_and_the_others_give_way_until_it_is_sent(
    runtime: Runtime,
) -> None:
    """A crisis turn wakes the sender as it ends: the other chats' turns keep giving way until its reply has
    been claimed and sent, through the limiter's urgent lane, ahead of the replies waiting for the rate. An
    ordinary row goes in the ordinary lane."""
    now = db_now()
    async with db.transaction(runtime.sessions) as session:
        await outbox.enqueue(
            session,
            [
                outbox.Planned("crisis", "urgent_reply", 42, "988", now, priority=Priority.URGENT),
                outbox.Planned("notice", "notice", 41, "text", now),
            ],
        )
    bot = _LaneBot(runtime)
    dispatcher = sender.Dispatcher(runtime, cast(Bot, bot))
    runtime.precedence.take()  # the crisis turn, which has just committed its reply
    dispatcher.wake()
    runtime.precedence.give()  # the turn has ended; the reply is not sent yet
    assert runtime.precedence.held
    assert await dispatcher.drain() == 2
    assert bot.lanes[42] == (True, True)  # urgent lane, the others giving way
    assert bot.lanes[41][0] is False  # ordinary lane
    assert not runtime.precedence.held


async def test_urgent_rows_given_back_untried_at_close_leave_no_hold_on_the_others(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold left behind would keep later crises from going first: rows handed out as the sender closes are
    given back untried, and their holds with them."""
    now = db_now()
    async with db.transaction(runtime.sessions) as session:
        await outbox.enqueue(
            session,
            [
                outbox.Planned(f"crisis {n}", "urgent_reply", 50 + n, "988", now, priority=Priority.URGENT)
                for n in range(3)
            ],
        )
    bot = _LaneBot(runtime)
    dispatcher = sender.Dispatcher(runtime, cast(Bot, bot))
    claim = outbox.claim

    async def claim_then_close(*args: Any, **kwargs: Any) -> list[outbox.Claimed]:
        rows = await claim(*args, **kwargs)
        dispatcher._closing = True  # the process is stopping while the rows are being claimed
        return rows

    monkeypatch.setattr(outbox, "claim", claim_then_close)
    await dispatcher.drain()
    assert bot.lanes == {}  # none was sent
    assert not runtime.precedence.held
