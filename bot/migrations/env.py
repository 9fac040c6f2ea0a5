"""Alembic environment. Run through `bot.db.upgrade` (which hands over a connection) or the alembic CLI."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from bot.core.config import load_settings
from bot.core.db import make_engine
from bot.core.models import Base, UTCDateTime

target_metadata = Base.metadata


def _render_item(kind: str, item: Any, _autogen_context: AutogenContext) -> str | Literal[False]:
    """Write our Python-side column types as their plain SQL types, so migrations never import models."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = make_engine(load_settings().database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_run_with)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run_with(given)
else:
    asyncio.run(_run_online())
