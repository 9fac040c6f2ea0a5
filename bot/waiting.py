"""What an active patient's typed text may be answering: a safety-plan step, the screener, an exercise, a
check-in, a "can't make it" reason. Looked up on every message, so in one query, built once; what each of them
means ("open", "under way") stays with its own module, which gives the query for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot import checkin, coping, cssrs, safety_plan, schedule
from bot.models import Attendance, CheckIn, CopingSession, Patient, SafetyPlan, SuicideScreen, UTCDateTime


@dataclass(frozen=True)
class Waiting:
    plan: SafetyPlan | None  # with a step being typed (or left: see safety_plan.editing)
    screen: SuicideScreen | None  # the C-SSRS screener, open
    exercise: CopingSession | None  # a coping exercise under way
    checkin: CheckIn | None  # open
    reason: Attendance | None  # "can't make it", its reason asked for less than `reason_within` ago


@cache
def _query() -> Select[Any]:
    """One row: beside the patient, each part's first row (or nulls), joined on its id. Building it costs more
    than running it, so it is built once, with the patient and the time as parameters."""
    patient_id = bindparam("patient_id", type_=Patient.id.type)
    since = bindparam("since", type_=UTCDateTime())
    parts: list[tuple[type[Any], Select[Any]]] = [
        (SafetyPlan, safety_plan.being_edited_query(patient_id)),
        (SuicideScreen, cssrs.open_screen_query(patient_id)),
        (CopingSession, coping.active_session_query(patient_id)),
        (CheckIn, checkin.open_checkin_query(patient_id)),
        (Attendance, schedule.awaiting_reason_query(patient_id, since)),
    ]
    entities = [aliased(model) for model, _ in parts]
    query = select(*entities).select_from(Patient).where(Patient.id == patient_id)
    for entity, (model, part) in zip(entities, parts, strict=True):
        query = query.outerjoin(entity, entity.id == part.with_only_columns(model.id).scalar_subquery())
    return query


async def waiting_for(
    session: AsyncSession, patient_id: int, now: datetime, *, reason_within: timedelta
) -> Waiting:
    """For a patient who exists (NoResultFound otherwise)."""
    row = (await session.execute(_query(), {"patient_id": patient_id, "since": now - reason_within})).one()
    return Waiting(*row)
