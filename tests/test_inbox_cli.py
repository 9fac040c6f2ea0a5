"""`python -m bot inbox stats` in this process (the `cli` fixture), against inbox rows written through
bot.intake.store at fixed times."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.intake import store
from tests.harness import CommandLine

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
WORDS = "my private words"


def _incoming(update_id: int, chat_id: int) -> store.Incoming:
    raw = {
        "update_id": update_id,
        "message": {"message_id": 1, "date": 0, "chat": {"id": chat_id, "type": "private"}, "text": WORDS},
    }
    return store.Incoming(update_id, chat_id, json.dumps(raw))


async def test_an_empty_inbox_is_one_line(cli: CommandLine, engine: object) -> None:
    result = await asyncio.to_thread(cli, "inbox", "stats")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "inbox empty\n"


async def test_stats_count_by_status_and_list_parked_rows_without_their_words(
    cli: CommandLine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with db.transaction(sessions) as session:
        await store.add(session, [_incoming(i, 500 + i % 2) for i in range(1, 6)], NOW)
        await store.mark_done(session, [1, 2], NOW)
        for _ in range(2):
            await store.mark_failed(session, 3, "OperationalError", NOW, max_attempts=2)
        await store.mark_failed(session, 4, "BadRequest", NOW + timedelta(minutes=1), max_attempts=1)

    result = await asyncio.to_thread(cli, "inbox", "stats")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["pending\t1", "done\t2", "parked\t2"]
    assert lines[5:] == [
        "4\t500\t1\tBadRequest\t2026-12-07 12:00:00Z\t2026-12-07 12:01:00Z",
        "3\t501\t2\tOperationalError\t2026-12-07 12:00:00Z\t2026-12-07 12:00:00Z",
    ]
    assert WORDS not in result.stdout + result.stderr

    shorter = await asyncio.to_thread(cli, "inbox", "stats", "--parked", "1")
    assert shorter.stdout.splitlines()[5:] == [
        "4\t500\t1\tBadRequest\t2026-12-07 12:00:00Z\t2026-12-07 12:01:00Z",
        "... and 1 more (--parked N lists more)",
    ]
