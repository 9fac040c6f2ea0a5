"""What an active patient's typed text may be answering: a safety-plan step, the screener, an exercise, a
check-in, a "can't make it" reason. Looked up on every message, so in one query (with the patient, when the
sender is not known yet), built once; what each of them means ("open", "under way") stays with its own
module, which gives the query for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.checkin import rules as checkin
from bot.coping import rules as coping
from bot.core.models import (
    Attendance,
    CheckIn,
    CopingSession,
    Patient,
    SafetyPlan,
    SuicideScreen,
    UTCDateTime,
)
from bot.core.people import telegram_refs
from bot.enrollment import consent
from bot.risk import cssrs, safety_plan
from bot.schedule import rules as schedule


@dataclass(frozen=True)
class Waiting:
    plan: SafetyPlan | None  # with a step being typed (or left: see safety_plan.editing)
    screen: SuicideScreen | None  # the C-SSRS screener, open
    exercise: CopingSession | None  # a coping exercise under way
    checkin: CheckIn | None  # open
    reason: Attendance | None  # "can't make it", its reason asked for less than `reason_within` ago
    consent_version: str | None = None  # the version of the consent in force (bot.enrollment.consent)


@cache
def _query(key: Literal["id", "telegram_ref"]) -> Select[Any]:
    """One row: the patient whose `key` is :key (for `telegram_ref`: one of the pseudonyms in :key) and,
    beside it, each part's first row (or nulls), joined on its id. Building this costs more than running it,
    so it is built once, with parameters."""
    patient_id = Patient.__table__.c.id  # each part's subquery is correlated with the patient row
    since = bindparam("since", type_=UTCDateTime())
    parts: list[tuple[type[Any], Select[Any]]] = [
        (SafetyPlan, safety_plan.being_edited_query(patient_id)),
        (SuicideScreen, cssrs.open_screen_query(patient_id)),
        (CopingSession, coping.active_session_query(patient_id)),
        (CheckIn, checkin.open_checkin_query(patient_id)),
        (Attendance, schedule.awaiting_reason_query(patient_id, since)),
    ]
    entities = [aliased(model) for model, _ in parts]
    found = (
        Patient.id == bindparam("key")
        if key == "id"
        else Patient.telegram_ref.in_(bindparam("key", expanding=True))
    )
    agreed = consent.version_in_force_query(patient_id).scalar_subquery()
    query = select(Patient, *entities, agreed).select_from(Patient).where(found)
    for entity, (model, part) in zip(entities, parts, strict=True):
        query = query.outerjoin(entity, entity.id == part.with_only_columns(model.id).scalar_subquery())
    return query


async def _lookup(
    session: AsyncSession, key: Literal["id", "telegram_ref"], value: int | list[int], since: datetime
) -> tuple[Patient, Waiting] | None:
    row = (await session.execute(_query(key), {"key": value, "since": since})).one_or_none()
    return None if row is None else (row[0], Waiting(*row[1:]))


async def waiting_for(
    session: AsyncSession, patient_id: int, now: datetime, *, reason_within: timedelta = schedule.REASON_WAIT
) -> Waiting:
    """For a patient who exists (LookupError otherwise)."""
    found = await _lookup(session, "id", patient_id, now - reason_within)
    if found is None:
        raise LookupError(f"no patient {patient_id}")
    return found[1]


async def patient_and_waiting(
    session: AsyncSession,
    telegram_user_id: int,
    now: datetime,
    *,
    reason_within: timedelta = schedule.REASON_WAIT,
) -> tuple[Patient, Waiting] | None:
    """The patient with this Telegram account and what waits for their text; None if no patient has it."""
    refs = telegram_refs(session, telegram_user_id)
    return await _lookup(session, "telegram_ref", refs, now - reason_within)
