"""bot.core.inline_sqlite: statements on the event loop's thread; waiting for the write lock never blocks
it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import db, inline_sqlite


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lock.sqlite3'}"
    engine = db.make_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    await engine.dispose()
    yield url


class Ticker:
    """Counts how often the loop gets to run it: a blocked loop stops the count."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM notes")) or 0)


async def test_a_transaction_waits_for_another_of_this_process_without_blocking_the_loop(url: str) -> None:
    first, second = db.make_engine(url), db.make_engine(url)
    try:
        release = asyncio.Event()

        async def hold() -> None:
            async with first.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('first')"))
                await release.wait()  # suspended while holding the write lock

        async def wait_turn() -> float:
            started = time.monotonic()
            async with second.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('second')"))
            return time.monotonic() - started

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.05)
        with Ticker() as ticker:
            waiter = asyncio.create_task(wait_turn())
            await asyncio.sleep(0.3)
            assert not waiter.done()  # it waits for the lock...
            assert ticker.ticks >= 20  # ...and the loop ran all along (60 ticks if never held up)
            release.set()
            waited = await asyncio.wait_for(waiter, timeout=5)
        await holder
        assert waited >= 0.3
        assert await _count(second) == 2
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_transaction_waits_for_another_process(url: str) -> None:
    database = url.split("///", 1)[1]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({database!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); c.execute(\"INSERT INTO notes (body) VALUES ('other')\")\n"
            "print('held', flush=True); time.sleep(0.5); c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    engine = db.make_engine(url)
    try:
        assert holder.stdout is not None
        assert await asyncio.to_thread(holder.stdout.readline) == "held\n"
        with Ticker() as ticker:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('ours')"))
            assert ticker.ticks >= 20
        assert await _count(engine) == 2
    finally:
        holder.wait(timeout=10)
        await engine.dispose()


async def test_the_wait_ends_with_database_is_locked_after_the_busy_timeout(url: str) -> None:
    first = db.make_engine(url)
    impatient = db.make_engine(url, async_creator=inline_sqlite.creator(url, busy_timeout=0.2))
    try:
        async with first.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('first')"))
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                async with impatient.begin() as other:
                    await other.execute(text("INSERT INTO notes (body) VALUES ('never')"))
            assert 0.2 <= time.monotonic() - started < 2
        assert await _count(impatient) == 1  # and the engine works once the lock is free
    finally:
        await first.dispose()
        await impatient.dispose()


async def test_errors_other_than_busy_are_raised_at_once_as_sqlalchemy_errors(url: str) -> None:
    engine = db.make_engine(url)
    try:
        started = time.monotonic()
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO notes (id, body) VALUES (1, NULL)"))
        with pytest.raises(OperationalError, match="no such table"):
            async with engine.begin() as connection:
                await connection.execute(text("SELECT * FROM nowhere"))
        assert time.monotonic() - started < 1
        async with engine.begin() as connection:  # rolled back, and the pool's connections still work
            await connection.execute(text("INSERT INTO notes (id, body) VALUES (1, 'one')"))
        assert await _count(engine) == 1
    finally:
        await engine.dispose()


async def test_an_in_memory_database_works_too() -> None:
    engine = db.make_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1), (2)"))
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT sum(x) FROM t")) == 3
    finally:
        await engine.dispose()
