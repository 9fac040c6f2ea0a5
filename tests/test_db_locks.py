"""db.JobLocks: whole-database jobs run in one process at a time on PostgreSQL (advisory locks, all of a
process's on one connection)."""

from __future__ import annotations

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


async def test_one_holder_at_a_time_on_one_connection_per_process(engine: AsyncEngine) -> None:
    mine = db.JobLocks(engine)
    if engine.dialect.name != "postgresql":  # SQLite serves one process: nothing to exclude
        async with mine.exclusive("job:plan") as first, mine.exclusive("job:plan") as second:
            assert first and second
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
    finally:
        await mine.close()
        await theirs.close()
        await other.dispose()
    assert await _holders(engine, "job:plan", "job:digest", "job:page") == []


async def test_a_dead_holder_frees_its_locks_and_a_broken_connection_is_replaced(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        return  # SQLite holds no locks (the test above)
    mine, other = db.JobLocks(engine), _other_process(engine)
    theirs = db.JobLocks(other)
    try:
        async with mine.exclusive("job:plan") as held:
            assert held
            # A process that dies holding the lock: its connection ends, and the database lets the lock go.
            async with other.connect() as connection:
                await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = ANY(:pids)"
                    ),
                    {"pids": await _holders(engine, "job:plan")},
                )
                await connection.commit()
            async with theirs.exclusive("job:plan") as taken_over:
                assert taken_over
        # the dead process's connection was dropped; asking again opens a new one
        async with mine.exclusive("job:digest") as digest:
            assert digest
    finally:
        await mine.close()
        await theirs.close()
        await other.dispose()
