from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import db
from bot.core.models import Base


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    assert differences == []


async def test_downgrade_to_empty_and_back(engine: AsyncEngine) -> None:
    await db.downgrade(engine, "base")
    assert await db.current_revision(engine) is None
    await db.upgrade(engine)
    await db.ensure_current(engine)


async def test_an_unmigrated_database_is_refused_with_advice(tmp_path: Path) -> None:
    empty = db.make_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.sqlite3")
    try:
        with pytest.raises(db.SchemaNotCurrent, match="run `python -m bot db upgrade` first"):
            await db.ensure_current(empty)
    finally:
        await empty.dispose()
