"""ENCRYPTION_KEY against what is stored, with the real bot over HTTP: a key set that cannot read the
database is refused at start in one line; an outbox row no key can read is set aside and the rest is sent."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.careteam import flags
from bot.careteam.notices import render_notice
from bot.core import db
from bot.core.models import OutboxMessage, OutboxStatus, Priority, utcnow
from bot.outbox import store as outbox
from devtools.simulator import TelegramStandIn
from tests.harness import TEST_ENCRYPTION_KEY, TEST_TOKEN, BotHarness
from tests.records import add_patient


async def _bot(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`python -m bot ...` in its own process; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # still running: it did not refuse
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _notice(harness: BotHarness, chat_id: int, alias: str, key: str) -> outbox.Planned:
    notice = flags.Notice(chat_id, "en", flags.FlagKind.MISSED_CHECKINS, alias, 3)
    return render_notice(harness.runtime, notice, key=key)


async def test_run_refuses_a_key_that_cannot_read_the_database_in_one_line(
    cli_env: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        await outbox.enqueue(
            session,
            [outbox.Planned("kept", "notice", patient.chat_id, "written with the right key", utcnow())],
        )
    wrong = Fernet.generate_key().decode()
    async with TelegramStandIn() as standin:
        env = {**cli_env, "BOT_TOKEN": TEST_TOKEN, "TELEGRAM_API_BASE_URL": standin.base_url}
        code, out, err = await _bot({**env, "ENCRYPTION_KEY": wrong}, "run")
        assert code == 2, err
        [line] = err.strip().splitlines()
        assert line.startswith("configuration error: ENCRYPTION_KEY:") and "patients.telegram_user_id" in line
        assert "keys rotate" in line
        for secret in (wrong, TEST_ENCRYPTION_KEY, wrong[:12], TEST_ENCRYPTION_KEY[:12]):
            assert secret not in out + err
        assert standin.calls == []  # refused before a word to Telegram


async def test_an_outbox_row_no_key_can_read_is_set_aside_and_the_rest_is_sent(
    harness: BotHarness, cli_env: dict[str, str], database_url: str, caplog: pytest.LogCaptureFixture
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
    first = [_notice(harness, sam_user, "Robin", "1"), _notice(harness, bo_user, "Kai", "2")]
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
    code, out, err = await _bot(cli_env, "outbox", "stats")
    assert code == 0, err
    assert "unreadable\t1" in out.splitlines()

    # Later batches go on, the row set aside is left alone, and a restart is not refused for it.
    await harness.restart()
    later = _notice(harness, sam_user, "Lee", "3")
    async with db.transaction(harness.runtime.sessions) as session:
        await outbox.enqueue(session, [later])
    harness.runtime.wake_outbox()
    await harness.standin.wait_for(sam_user, later.text, timeout=10)
    assert "?" not in [m.text for m in harness.standin.transcript(sam_user)]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=outbox.unreadable")]
    assert logged == [f"event=outbox.unreadable outbox_id={foreign_id} kind=page"]
