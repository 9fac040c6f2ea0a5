"""bot.core.inline_sqlite: statements on the event loop's thread; waiting for the write lock never blocks
it; AUTOCOMMIT works; nothing of aiosqlite's, and nothing private of SQLAlchemy's, is used."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


class SlowDisk:
    """A sqlite3 connection whose commit takes `seconds` of waiting (as a sync to a busy disk does)."""

    def __init__(self, raw: Any, seconds: float) -> None:
        self._raw = raw
        self._seconds = seconds

    def commit(self) -> None:
        time.sleep(self._seconds)  # blocks the thread it runs on, as the disk's sync would
        self._raw.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


async def test_a_commit_waits_for_the_disk_without_blocking_the_loop(url: str) -> None:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert isinstance(driver, inline_sqlite.Connection)
            driver.raw = SlowDisk(driver.raw, 1.0)  # type: ignore[assignment]
            await connection.execute(text("INSERT INTO notes (body) VALUES ('synced')"))
            with Ticker() as ticker:
                await connection.commit()
                # the loop ran while the commit waited: about 200 ticks, none if the commit held the loop
                assert ticker.ticks >= 5
        assert await _count(engine) == 1
    finally:
        await engine.dispose()


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
    impatient = db.make_engine(f"{url}?timeout=0.2")  # sqlite3's argument: how long to wait for the lock
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


async def _vacuum(connection: AsyncConnection) -> None:
    """VACUUM: SQLite refuses it inside a transaction, so it tells whether one was begun."""
    await connection.execute(text("VACUUM"))


async def test_autocommit_in_execution_options_begins_no_transaction_and_the_pool_gets_it_back_reset(
    url: str,
) -> None:
    engine = db.make_engine(url, pool_size=1, max_overflow=0)  # one connection: the same one every time
    other = db.make_engine(url)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("INSERT INTO notes (body) VALUES ('at once')"))
            assert await _count(other) == 1  # committed without a commit
            await _vacuum(autocommit)
            await autocommit.rollback()  # nothing to roll back
        assert await _count(other) == 1
        with pytest.raises(OperationalError, match="cannot VACUUM from within a transaction"):
            async with engine.begin() as connection:  # the same connection, transactional again
                await _vacuum(connection)
        with pytest.raises(ZeroDivisionError):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('rolled back')"))
                raise ZeroDivisionError
        assert await _count(other) == 1
    finally:
        await engine.dispose()
        await other.dispose()


async def test_autocommit_for_the_whole_engine(url: str) -> None:
    engine = db.make_engine(url, isolation_level="AUTOCOMMIT")
    other = db.make_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('at once')"))
            assert await _count(other) == 1
            await _vacuum(connection)
        async with engine.begin() as connection:  # begin() begins nothing either
            await _vacuum(connection)
    finally:
        await engine.dispose()
        await other.dispose()


async def test_an_autocommit_write_waits_for_the_lock_without_blocking_the_loop(url: str) -> None:
    holder, engine = db.make_engine(url), db.make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with holder.begin() as held:
            await held.execute(text("INSERT INTO notes (body) VALUES ('first')"))
            with Ticker() as ticker:
                async with engine.connect() as connection:
                    assert await connection.scalar(text("SELECT count(*) FROM notes")) == 0  # reads: no wait
                    write = asyncio.create_task(
                        connection.execute(text("INSERT INTO notes (body) VALUES ('second')"))
                    )
                    await asyncio.sleep(0.3)
                    assert not write.done()
                    assert ticker.ticks >= 20
                    await held.commit()
                    await asyncio.wait_for(write, timeout=5)
        assert await _count(engine) == 2
    finally:
        await holder.dispose()
        await engine.dispose()


def test_sqlite_runs_without_aiosqlite(tmp_path: Path) -> None:
    """A fresh interpreter in which `import aiosqlite` fails: the bot's SQLite engine, given the URL the
    settings use, still migrates, writes, reads and runs in AUTOCOMMIT."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.modules["aiosqlite"] = None  # import aiosqlite -> ImportError
        from sqlalchemy import text
        from bot.core import db

        async def main():
            engine = db.make_engine({f"sqlite+aiosqlite:///{tmp_path / 'no-aiosqlite.sqlite3'}"!r})
            await db.upgrade(engine)
            await db.ensure_current(engine)
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE t (x INTEGER)"))
                await connection.execute(text("INSERT INTO t VALUES (1), (2)"))
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM"))
                total = await autocommit.scalar(text("SELECT sum(x) FROM t"))
            await engine.dispose()
            print(engine.dialect.driver, total, sys.modules["aiosqlite"])

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path.cwd(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["inline", "3", "None"]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_of_another_library_is_used() -> None:
    """The driver imports only public names of public modules; no class of it defines a private member (a
    method, property or class attribute: what one library reaches for in another's objects); and the only
    `x._name` it reads or writes are `self._name`, in a class that derives from no other library's class and
    sets `self._name` itself. So neither SQLAlchemy's internals nor aiosqlite's are touched or imitated."""
    tree = ast.parse(Path(inline_sqlite.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module is not None and not any(_private(part) for part in node.module.split("."))
            assert not any(_private(alias.name) for alias in node.names), ast.unparse(node)
        if isinstance(node, ast.Import):
            assert not any(_private(part) for alias in node.names for part in alias.name.split("."))
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    local = {cls.name for cls in classes}
    allowed: set[int] = set()  # ids of the Attribute nodes that are a class's own private attributes
    for cls in classes:
        members = [
            getattr(stmt, "name", None) or ast.unparse(target)
            for stmt in cls.body
            for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt])
        ]
        assert not [name for name in members if _private(name)], cls.name
        if not all(isinstance(base, ast.Name) and base.id in local for base in cls.bases):
            continue  # derives from another library's class: its private names are that library's
        on_self = [
            node
            for node in ast.walk(cls)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ]
        own = {node.attr for node in on_self if isinstance(node.ctx, ast.Store)}
        allowed |= {id(node) for node in on_self if node.attr in own}
    private = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and _private(node.attr)]
    assert [ast.unparse(node) for node in private if id(node) not in allowed] == []
    assert {"self._cursor", "self._connection"} <= {ast.unparse(node) for node in private}  # it sees them


async def test_a_transaction_waiting_for_the_lock_is_woken_when_one_of_this_process_ends(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that begins again right after its commit (the poller, page after page) must not keep the
    lock from one waiting: the waiter tries again the moment a transaction of this process ends, not at
    its next pause only (made an hour long here: without the wake it would still be waiting)."""
    monkeypatch.setattr(inline_sqlite, "_PAUSES", (3600.0,))
    first, second = db.make_engine(url), db.make_engine(f"{url}?timeout=7200")
    try:
        release = asyncio.Event()
        held = asyncio.Event()

        async def hold() -> None:
            async with first.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('first')"))
                held.set()
                await release.wait()

        async def wait_turn() -> None:
            async with second.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('second')"))

        holder = asyncio.create_task(hold())
        await held.wait()
        waiter = asyncio.create_task(wait_turn())
        await asyncio.sleep(0.05)  # refused once: now in its (hour-long) pause
        assert not waiter.done()
        release.set()
        await holder
        await asyncio.wait_for(waiter, 30)
        assert await _count(first) == 2
    finally:
        await first.dispose()
        await second.dispose()
