from __future__ import annotations

import logging

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import logs
from bot.core.models import Counter
from tests.harness import TEST_TOKEN


def test_debug_is_for_our_modules_only_and_tokens_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.configure("DEBUG")
        logging.getLogger("telegram.ext.Application").debug("update content: I relapsed last night")
        logging.getLogger("bot.handlers").debug("event=debug.visible")
        logging.getLogger("sqlalchemy.engine.Engine").info("UPDATE checkins SET note='I used again'")
        logging.getLogger("bot.app").warning("calling https://example/bot%s/getMe", TEST_TOKEN)
        err = capsys.readouterr().err
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for library in ("telegram", "sqlalchemy", "aiosqlite", "asyncpg", "uvicorn", "starlette"):
            logging.getLogger(library).setLevel(logging.NOTSET)
    assert "relapsed" not in err and "used again" not in err
    assert "event=debug.visible" in err
    assert TEST_TOKEN not in err and "bot<token>/getMe" in err


async def test_database_errors_never_carry_values(engine: AsyncEngine) -> None:
    secret = "note: I used again"
    with pytest.raises(IntegrityError) as caught:
        async with engine.begin() as connection:
            await connection.execute(insert(Counter).values(name=secret, value=1))
            await connection.execute(insert(Counter).values(name=secret, value=1))
    assert secret not in str(caught.value)
