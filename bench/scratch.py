"""The benchmarks' scratch database: an empty, fully migrated schema, or a refusal to touch real data."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import db

# The clinic the benchmarked bot names (`run` needs these settings)
CLINIC = {"PROGRAM_NAME": "Bench IOP", "CLINIC_PHONE": "555-0100", "AFTER_HOURS_PHONE": "555-0199"}


async def fresh_schema(engine: AsyncEngine) -> None:
    """PostgreSQL: drop and recreate the public schema (the URL must name a scratch database). SQLite: the
    file must be new or empty. Then migrate to the newest revision."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    else:
        async with engine.connect() as connection:
            tables = await connection.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'table'"))
        if tables:
            raise SystemExit("the SQLite database already has tables: give a new file (a scratch database)")
    await db.upgrade(engine)
