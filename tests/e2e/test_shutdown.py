"""A clean stop (SIGTERM's path) in the middle of sending: what went out is recorded, what was claimed and not
tried is given back at once (not held until its lease ends), and the next start sends the rest once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.models import OutboxMessage, OutboxStatus
from tests.harness import BotHarness, until
from tests.records import add_group, add_group_session

USERS = range(8_400_000, 8_400_030)
TITLE = "Evening IOP group"


def _delivered(harness: BotHarness) -> dict[int, int]:
    return {u: sum(TITLE in m.text for m in harness.standin.transcript(u)) for u in USERS}


async def test_stop_mid_send_gives_claimed_rows_back_and_loses_nothing(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    slow = settings.model_copy(
        update={
            "reminder_offsets": (timedelta(hours=1),),
            "plan_tick_seconds": 1,
            "dispatch_tick_seconds": 0.5,
            "send_rate_per_second": 4,  # about 8 seconds for all: the stop comes in the middle
            "outbox_lease_seconds": 600,  # a row not given back would wait this long
        }
    )
    group = await add_group(sessions, "Stopped mid-send", USERS)
    async with BotHarness.running(slow) as harness:
        for user in USERS:
            harness.standin.add_user(user)
        await add_group_session(sessions, group, starts_in=timedelta(hours=1, seconds=2), title=TITLE)
        await until(lambda: sum(_delivered(harness).values()) >= 8, 30, "the first reminders")
        await harness.stop()

        before = _delivered(harness)
        async with sessions() as session:
            rows = (await session.execute(select(OutboxMessage.status, OutboxMessage.claimed_by))).all()
            sent = await session.scalar(select(func.count()).where(OutboxMessage.status == OutboxStatus.SENT))
        assert len(rows) == len(USERS)
        assert [claimed for status, claimed in rows if status is OutboxStatus.PENDING and claimed] == []
        assert sent == sum(before.values()) < len(USERS)  # every send recorded; the rest still to go
        assert max(before.values()) == 1

        await harness.start()  # the harness fixture-style stop happens on leaving `running`
        await until(lambda: min(_delivered(harness).values()) == 1, 30, "the rest, after the restart")
        await asyncio.sleep(1)
        assert set(_delivered(harness).values()) == {1}
