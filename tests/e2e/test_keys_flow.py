"""ENCRYPTION_KEY against what is stored, with the real bot over HTTP: a key set that cannot read the
database is refused at start in one line; an outbox row no key can read is set aside and the rest is sent."""

from __future__ import annotations

import asyncio
import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.careteam import flags
from bot.careteam.callbacks import RowEvent
from bot.careteam.notices import render_notice
from bot.core import db
from bot.core.models import OutboxMessage, OutboxStatus, Priority, utcnow
from bot.outbox import store as outbox
from tests.harness import TEST_ENCRYPTION_KEY, TEST_TOKEN, BotHarness, CommandLine, standin_in_thread
from tests.records import add_patient


def _notice(harness: BotHarness, chat_id: int, alias: str, checkin_id: int) -> outbox.Planned:
    notice = flags.Notice(chat_id, "en", flags.FlagKind.MISSED_CHECKINS, alias, 3)
    return render_notice(harness.runtime, notice, RowEvent(checkin_id))


def test_run_refuses_a_key_that_cannot_read_the_database_in_one_line(
    cli: CommandLine, database_url: str, engine: AsyncEngine
) -> None:
    async def written_with_the_right_key() -> None:
        keyed = db.make_engine(database_url, encryption_key=TEST_ENCRYPTION_KEY)
        try:
            sessions = db.make_sessionmaker(keyed)
            patient = await add_patient(sessions)
            async with db.transaction(sessions) as session:
                planned = outbox.Planned(
                    "kept", "notice", patient.chat_id, "written with the right key", utcnow()
                )
                await outbox.enqueue(session, [planned])
        finally:
            await keyed.dispose()

    asyncio.run(written_with_the_right_key())
    wrong = Fernet.generate_key().decode()
    with standin_in_thread() as standin:
        result = cli(
            "run", BOT_TOKEN=TEST_TOKEN, TELEGRAM_API_BASE_URL=standin.base_url, ENCRYPTION_KEY=wrong
        )
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("configuration error: ENCRYPTION_KEY:") and "patients.telegram_user_id" in line
        assert "keys rotate" in line
        for secret in (wrong, TEST_ENCRYPTION_KEY, wrong[:12], TEST_ENCRYPTION_KEY[:12]):
            assert secret not in result.stdout + result.stderr
        assert standin.calls == []  # refused before a word to Telegram


async def test_an_outbox_row_no_key_can_read_is_set_aside_and_the_rest_is_sent(
    harness: BotHarness, cli: CommandLine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.outbox.store")
    sam_user, _ = await harness.link_counselor("Sam")
    bo_user, _ = await harness.link_counselor("Bo")
    # Written by a process with another key (the old bug: one such row failed every claim, ~340 errors a
    # second, and nothing was sent to anyone): the most urgent row of the batch.
    foreign = db.make_engine(database_url, encryption_key=Fernet.generate_key().decode())
    try:
        async with db.transaction(db.make_sessionmaker(foreign)) as session:
            await outbox.enqueue(
                session,
                [outbox.Planned("foreign", "page", sam_user, "?", utcnow(), priority=Priority.URGENT)],
            )
    finally:
        await foreign.dispose()
    first = [_notice(harness, sam_user, "Robin", 1), _notice(harness, bo_user, "Kai", 2)]
    async with db.transaction(harness.runtime.sessions) as session:
        await outbox.enqueue(session, first)
    harness.runtime.wake_outbox()
    for planned in first:
        await harness.standin.wait_for(planned.chat_id, planned.text, timeout=10)

    async with harness.runtime.sessions() as session:
        foreign_id, status = (
            await session.execute(
                select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.key == "foreign")
            )
        ).one()
    assert status is OutboxStatus.UNREADABLE
    stats = await asyncio.to_thread(cli, "outbox", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "unreadable\t1" in stats.stdout.splitlines()

    # Later batches go on, the row set aside is left alone, and a restart is not refused for it.
    await harness.restart()
    later = _notice(harness, sam_user, "Lee", 3)
    async with db.transaction(harness.runtime.sessions) as session:
        await outbox.enqueue(session, [later])
    harness.runtime.wake_outbox()
    await harness.standin.wait_for(sam_user, later.text, timeout=10)
    assert "?" not in [m.text for m in harness.standin.transcript(sam_user)]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=outbox.unreadable")]
    assert logged == [f"event=outbox.unreadable outbox_id={foreign_id} kind=page"]
