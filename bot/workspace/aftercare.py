"""Aftercare check-ins for the counselor's digest: those that closed or were answered in full in the last 24
hours, for the counselor's patients in aftercare (every patient in aftercare, for a supervisor). A pure query
over the database: no words (aftercare check-ins hold none), no Telegram."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import AftercareCheckIn, AftercareStatus, CareAssignment, Patient, PatientStatus

FINISHED = (AftercareStatus.COMPLETE, AftercareStatus.PARTIAL, AftercareStatus.MISSED)
# Aftercare ends (back to discharged) once the last check-in closes: its answers still reach the digest.
STATUSES = (PatientStatus.AFTERCARE, PatientStatus.DISCHARGED)


@dataclass(frozen=True)
class AftercareItem:
    patient_id: int
    alias: str
    week: int
    status: AftercareStatus
    craving: int | None
    mood: int | None
    used: bool | None
    connected: str | None


async def recent(
    session: AsyncSession, counselor_id: int, now: datetime, *, whole_program: bool = False
) -> list[AftercareItem]:
    since = now - timedelta(days=1)
    query = (
        select(AftercareCheckIn, Patient.alias)
        .join(Patient, Patient.id == AftercareCheckIn.patient_id)
        .where(
            AftercareCheckIn.status.in_(FINISHED),
            AftercareCheckIn.finished_at > since,
            AftercareCheckIn.finished_at <= now,
            Patient.status.in_(STATUSES),
        )
        .order_by(Patient.alias, AftercareCheckIn.week)
    )
    if not whole_program:
        query = query.where(
            AftercareCheckIn.patient_id.in_(
                select(CareAssignment.patient_id).where(CareAssignment.counselor_id == counselor_id)
            )
        )
    return [
        AftercareItem(
            row.patient_id, alias, row.week, row.status, row.craving, row.mood, row.used, row.connected
        )
        for row, alias in (await session.execute(query)).all()
    ]
