"""db.exclusive: whole-database jobs run in one process at a time on PostgreSQL (an advisory lock)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import db
from tests.harness import TEST_ENCRYPTION_KEY


async def test_one_holder_at_a_time_and_a_dead_holder_frees_the_lock(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        async with db.exclusive(engine, "job:plan") as first, db.exclusive(engine, "job:plan") as second:
            assert first and second  # SQLite serves one process: nothing to exclude
        return
    other = db.make_engine(
        engine.url.render_as_string(hide_password=False), encryption_key=TEST_ENCRYPTION_KEY
    )
    try:
        async with db.exclusive(engine, "job:plan") as held:
            assert held
            async with (
                db.exclusive(other, "job:plan") as elsewhere,
                db.exclusive(other, "job:digest") as unrelated,
            ):
                assert not elsewhere and unrelated
        async with db.exclusive(other, "job:plan") as after_release:
            assert after_release

        # A process that dies holding the lock: its connection ends, and the database lets the lock go.
        async with db.exclusive(engine, "job:plan") as held:
            assert held
            async with other.connect() as connection:
                await connection.execute(
                    text(
                        # wait up to 5 s for the backend to end (the test's own database only: the other
                        # test processes' databases share the server and its lock keys)
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND objid = :key AND pid <> pg_backend_pid() "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"key": db.lock_key("job:plan")},
                )
                await connection.commit()
            async with db.exclusive(other, "job:plan") as taken_over:
                assert taken_over
    finally:
        await other.dispose()
