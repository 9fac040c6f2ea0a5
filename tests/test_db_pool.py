"""The pool's pre-ping: a pooled connection the database server dropped (a restart, a failover, a network cut)
is found before use and replaced; the work asked for runs on a new one."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import db
from tests.harness import TEST_ENCRYPTION_KEY


async def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":  # a SQLite file has no server to drop a connection
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
        return
    url = engine.url.render_as_string(hide_password=False)
    mine = db.make_engine(url, encryption_key=TEST_ENCRYPTION_KEY)
    try:
        async with mine.connect() as connection:
            dropped = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with engine.connect() as other:
            assert await other.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": dropped})
        assert mine.sync_engine.pool.checkedin() == 1  # the pool still holds it, not knowing
        async with mine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != dropped
    finally:
        await mine.dispose()
