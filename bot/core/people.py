"""Who is writing: look up the patient or counselor behind a Telegram user id."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.crypto import keyring_for
from bot.core.models import AssignmentRole, CareAssignment, Counselor, CounselorRole, Counter, Patient


@dataclass(frozen=True)
class Stranger:
    """Someone who is not enrolled. Nothing about them is stored."""

    telegram_user_id: int


Person = Patient | Counselor | Stranger


def telegram_refs(session: AsyncSession, telegram_id: int) -> list[int]:
    """The pseudonyms a Telegram user (or chat) id may be stored under: one per key of ENCRYPTION_KEY, so
    rows hashed before a new key was put in front are found until `keys rotate` hashes them again."""
    return keyring_for(session.get_bind().dialect).pseudonyms(telegram_id)


def is_telegram_user(
    model: type[Patient] | type[Counselor], session: AsyncSession, telegram_user_id: int
) -> ColumnElement[bool]:
    """A condition: the patient's (or counselor's) Telegram account is this one. The database holds only a
    keyed hash of the id (`telegram_ref`), so a reader without the key cannot look anyone up."""
    return model.telegram_ref.in_(telegram_refs(session, telegram_user_id))


async def identify(session: AsyncSession, telegram_user_id: int) -> Person:
    patient = await session.scalar(
        select(Patient).where(is_telegram_user(Patient, session, telegram_user_id))
    )
    if patient is not None:
        return patient
    return await identify_counselor(session, telegram_user_id)


async def identify_counselor(session: AsyncSession, telegram_user_id: int) -> Counselor | Stranger:
    """The active counselor with this Telegram account, else a stranger (for one who is no patient)."""
    counselor = await session.scalar(
        select(Counselor).where(
            is_telegram_user(Counselor, session, telegram_user_id), Counselor.active.is_(True)
        )
    )
    if counselor is not None:
        return counselor
    return Stranger(telegram_user_id)


async def add_counselor(
    session: AsyncSession, *, name: str, role: CounselorRole, timezone: str, language: str = "en"
) -> Counselor:
    name = " ".join(name.split())
    if not name:
        raise ValueError("a counselor needs a name")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{timezone!r} is not an IANA time zone such as America/Chicago") from None
    counselor = Counselor(name=name[:120], role=role, timezone=timezone, language=language)
    session.add(counselor)
    await session.flush()
    return counselor


async def care_team(session: AsyncSession, patient_id: int) -> list[Counselor]:
    rows = await session.scalars(
        select(Counselor)
        .join(CareAssignment, CareAssignment.counselor_id == Counselor.id)
        .where(CareAssignment.patient_id == patient_id, Counselor.active.is_(True))
        .order_by(CareAssignment.role, Counselor.id)
    )
    return list(rows)


async def assigned_counselors(session: AsyncSession, patient_id: int) -> list[Counselor]:
    """The patient's primary counselors (linked to Telegram); the whole care team if none is."""
    team = [c for c in await care_team(session, patient_id) if c.chat_id is not None]
    rows = await session.execute(
        select(CareAssignment.counselor_id, CareAssignment.role).where(
            CareAssignment.patient_id == patient_id
        )
    )
    roles = {counselor_id: role for counselor_id, role in rows.all()}
    primary = [c for c in team if roles.get(c.id) is AssignmentRole.PRIMARY]
    return primary or team


async def bump_counter(session: AsyncSession, name: str, by: int = 1) -> None:
    """Add to a named counter in one statement, safe under concurrent writers."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Counter).values(name=name, value=by)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + by})
    )


async def counter_value(session: AsyncSession, name: str) -> int:
    return (await session.scalar(select(Counter.value).where(Counter.name == name))) or 0
