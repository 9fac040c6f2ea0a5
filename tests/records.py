"""Rows the rule tests need as a starting point, written through the real models."""

from __future__ import annotations

import itertools

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import db
from bot.models import Patient, PatientStatus

_numbers = itertools.count(100_000)


async def add_patient(sessions: async_sessionmaker[AsyncSession], **fields: object) -> Patient:
    """An active patient with a fresh Telegram id and alias; `fields` override any column."""
    number = next(_numbers)
    values: dict[str, object] = {
        "telegram_user_id": number,
        "chat_id": number,
        "alias": f"P{number}",
        "timezone": "UTC",
        "language": "en",
        "status": PatientStatus.ACTIVE,
        **fields,
    }
    async with db.transaction(sessions) as session:
        patient = Patient(**values)
        session.add(patient)
    return patient
