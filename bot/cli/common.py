"""What the command modules share: the error a user can fix, and the database for one command.

The command modules import what a command needs (the database layer, Alembic, uvicorn, icalendar,
scikit-learn...) inside the command, not at the top: `python -m bot --help` and `keys new` stay quick.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from bot.core.config import Settings
    from bot.core.models import Patient

Command: TypeAlias = "Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]"
"""A command: parsed arguments and settings in, exit status out (set as `handler` on its parser)."""


class CliError(Exception):
    """A mistake the user can fix; printed as one line, exit status 1."""


@asynccontextmanager
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    from bot.core import db

    key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    made = db.make_engine(settings.database_url, encryption_key=key)
    try:
        yield made
    finally:
        await made.dispose()


async def with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Run `work` in one transaction on a database at the newest migration (SchemaNotCurrent otherwise)."""
    from bot.core import db

    async with engine(settings) as made:
        await db.ensure_current(made)
        async with db.transaction(db.make_sessionmaker(made)) as session:
            return await work(session)


async def patient_by_alias(session: AsyncSession, alias: str) -> Patient:
    """The patient of that alias, whatever its case (as the bot matches it); CliError, with the alias
    probably meant, if there is none."""
    from sqlalchemy import func, select

    from bot.core.models import Patient
    from bot.core.names import did_you_mean

    typed = " ".join(alias.split())
    patient = await session.scalar(select(Patient).where(func.lower(Patient.alias) == typed.lower()))
    if patient is None:
        known = await session.scalars(select(Patient.alias))
        raise CliError(f"no patient with alias {alias!r}{did_you_mean(typed, known)}")
    return patient
