"""Naloxone (Narcan): whether the patient has it at home (asked at the end of set-up, and in /meds), and the
reminder to replace it after a crisis message about an overdose.

Facts behind the texts (content/<lang>/naloxone.yaml): the FDA approved Narcan 4 mg nasal spray for sale
without a prescription on 2023-03-29 (SAMHSA, "Non-prescription naloxone FAQs"); many health departments and
community programs give it out for free.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin.rules import in_quiet_hours
from bot.core import audit
from bot.core.models import NaloxoneStatus, Patient

ANSWERS = ("yes", "no", "unsure")
REPLACE_AFTER = timedelta(
    hours=24
)  # the reminder to replace naloxone, after a crisis message about an overdose


async def status_of(session: AsyncSession, patient_id: int) -> NaloxoneStatus | None:
    return await session.scalar(select(NaloxoneStatus).where(NaloxoneStatus.patient_id == patient_id))


async def _row(session: AsyncSession, patient_id: int) -> NaloxoneStatus:
    found = await status_of(session, patient_id)
    if found is None:
        found = NaloxoneStatus(patient_id=patient_id)
        session.add(found)
        await session.flush()
    return found


async def record(session: AsyncSession, patient: Patient, answer: str, now: datetime) -> NaloxoneStatus:
    if answer not in ANSWERS:
        raise ValueError("not an answer")
    found = await _row(session, patient.id)
    found.has_naloxone = answer
    found.answered_at = now
    audit.record(
        session,
        "naloxone.answered",
        actor_type="patient",
        actor_id=patient.id,
        subject_type="patient",
        subject_id=patient.id,
        answer=answer,
    )
    return found


def replacement_time(patient: Patient, now: datetime) -> datetime:
    """When to remind: a day later, moved to the end of the patient's quiet hours if it falls in them."""
    at = now + REPLACE_AFTER
    step = timedelta(minutes=30)
    for _ in range(48):  # quiet hours last less than a day
        if not in_quiet_hours(patient, at):
            return at
        at += step
    return at


async def mark_reminded(session: AsyncSession, patient_id: int, at: datetime) -> None:
    found = await _row(session, patient_id)
    found.replace_reminded_at = at
