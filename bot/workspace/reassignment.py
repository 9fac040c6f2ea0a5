"""`python -m bot assign ALIAS COUNSELOR`: a patient gets a new primary counselor, and their open
escalations follow: the previous primary leaves the care team, the pages waiting for them are cancelled, and
every open escalation nobody has acknowledged is paged again at once (the new primary first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import (
    AssignmentRole,
    CareAssignment,
    Counselor,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    OutboxMessage,
    Patient,
)
from bot.outbox import store as outbox
from bot.risk.callbacks import pages_of

REASSIGNED = "reassigned"


@dataclass(frozen=True)
class Reassigned:
    previous: list[int]  # counselor ids no longer primary (removed from the care team)
    escalations: int  # open escalations paged again


async def assign_primary(
    session: AsyncSession, patient: Patient, counselor: Counselor, now: datetime
) -> Reassigned:
    if not counselor.active:
        raise ValueError(f"counselor {counselor.id} is not active")
    rows = list(await session.scalars(select(CareAssignment).where(CareAssignment.patient_id == patient.id)))
    previous = [
        a.counselor_id for a in rows if a.role is AssignmentRole.PRIMARY and a.counselor_id != counselor.id
    ]
    for assignment in rows:
        if assignment.counselor_id in previous:
            await session.delete(assignment)
    mine = next((a for a in rows if a.counselor_id == counselor.id), None)
    if mine is None:
        session.add(
            CareAssignment(patient_id=patient.id, counselor_id=counselor.id, role=AssignmentRole.PRIMARY)
        )
    else:
        mine.role = AssignmentRole.PRIMARY
    escalations = list(
        await session.scalars(
            select(Escalation).where(
                Escalation.patient_id == patient.id, Escalation.status != EscalationStatus.RESOLVED
            )
        )
    )
    moved = 0
    for escalation in escalations:
        if previous:
            await outbox.cancel(
                session,
                pages_of(escalation.id),
                OutboxMessage.counselor_id.in_(previous),
                reason=REASSIGNED,
            )
            # Access follows the care team: the copies they were paged with stop being a licence to this
            # escalation (Show details, the safety plan, /alerts); their buttons are refused from now on.
            await session.execute(
                delete(EscalationAlert).where(
                    EscalationAlert.escalation_id == escalation.id, EscalationAlert.counselor_id.in_(previous)
                )
            )
        if escalation.status is EscalationStatus.OPEN:
            escalation.next_page_at = now  # the page job sends it to the care team as it is now
            moved += 1
    await session.flush()
    audit.record(
        session,
        "patient.reassigned",
        actor_type="cli",
        subject_type="patient",
        subject_id=patient.id,
        counselor_id=counselor.id,
        escalations=moved,
    )
    return Reassigned(previous, moved)
