"""db.JobLocks: whole-database jobs run in one process at a time on PostgreSQL (advisory locks, all of a
process's on one connection)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import db
from tests.harness import TEST_ENCRYPTION_KEY

# the test's own database only: the other test processes' databases share the server and its lock keys
_HOLDERS = (
    "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = ANY(:keys) "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _other_process(engine: AsyncEngine) -> AsyncEngine:
    """Another process's engine on the same database."""
    return db.make_engine(
        engine.url.render_as_string(hide_password=False), encryption_key=TEST_ENCRYPTION_KEY
    )


async def _holders(engine: AsyncEngine, *names: str) -> list[int]:
    async with engine.connect() as connection:
        found = await connection.scalars(text(_HOLDERS), {"keys": [db.lock_key(n) for n in names]})
        return list(found)


async def _kill_holder_of(engine: AsyncEngine, name: str) -> None:
    """The server ends the connection holding `name` (a restart, a failover, a network cut)."""
    [pid] = await _holders(engine, name)
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        await connection.commit()


async def _running(locks: db.JobLocks, name: str) -> bool:
    async with locks.exclusive(name) as held:
        await asyncio.sleep(0.05)
        return held


async def test_one_holder_at_a_time_on_one_connection_per_process(engine: AsyncEngine) -> None:
    mine = db.JobLocks(engine)
    if engine.dialect.name != "postgresql":  # SQLite serves one process: nothing to exclude
        assert await asyncio.gather(_running(mine, "job:plan"), _running(mine, "job:plan")) == [True, True]
        return
    other = _other_process(engine)
    theirs = db.JobLocks(other)
    try:
        async with mine.exclusive("job:plan") as plan, mine.exclusive("job:digest") as digest:
            assert plan and digest
            assert len(await _holders(engine, "job:plan", "job:digest")) == 1  # one connection holds both
            async with mine.exclusive("job:plan") as again:
                assert not again  # the same job already running here (the database would say yes again)
            async with theirs.exclusive("job:plan") as elsewhere, theirs.exclusive("job:page") as unrelated:
                assert not elsewhere and unrelated
        async with theirs.exclusive("job:plan") as after_release:
            assert after_release
        # two runs of one job started together in this process: one runs
        assert sorted(await asyncio.gather(_running(mine, "job:x"), _running(mine, "job:x"))) == [False, True]
    finally:
        await mine.close()
        await theirs.close()
        await other.dispose()
    assert await _holders(engine, "job:plan", "job:digest", "job:page", "job:x") == []
    async with mine.exclusive("job:plan") as after_close:
        assert not after_close  # a stopped process takes no more work


async def test_a_dead_connection_is_replaced_and_running_jobs_take_their_locks_back(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name != "postgresql":
        return  # SQLite holds no locks (the test above)
    caplog.set_level(logging.WARNING, logger="bot.core.db")
    mine, other = db.JobLocks(engine), _other_process(engine)
    theirs = db.JobLocks(other)
    try:
        async with mine.exclusive("job:plan") as plan:
            assert plan
            await _kill_holder_of(engine, "job:plan")
            # the next ask finds the connection dead, opens another and takes job:plan back
            async with mine.exclusive("job:digest") as digest:
                assert digest
                assert len(await _holders(engine, "job:plan", "job:digest")) == 1
                async with theirs.exclusive("job:plan") as elsewhere:
                    assert not elsewhere
        assert "event=db.unlock_failed" not in caplog.text and "event=db.lock_lost" not in caplog.text

        # A process that dies holding the lock: the database lets it go, and another process takes it.
        async with mine.exclusive("job:plan") as plan:
            assert plan
            await _kill_holder_of(engine, "job:plan")
            async with theirs.exclusive("job:plan") as taken_over:
                assert taken_over
                async with mine.exclusive("job:digest") as digest:
                    assert digest
                assert "event=db.lock_lost lock=job:plan" in caplog.text  # it could not be taken back
    finally:
        await mine.close()
        await theirs.close()
        await other.dispose()
