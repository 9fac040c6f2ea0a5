"""/sos rules: whether the patient's "tell my care team now" is already with the care team, unanswered.

A second tap (or a retried one) while the first alert is still unacknowledged pages nobody again: the
escalation's own re-pages carry on. Once a counselor has acknowledged, a new tap opens it again and pages.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Escalation, EscalationStatus
from bot.risk.levels import Category

SOURCE = "sos"


async def unanswered_request(session: AsyncSession, patient_id: int) -> Escalation | None:
    """The patient's open, not yet acknowledged "tell my care team now" alert, if any (the category is
    encrypted: the patient's open escalations, a handful, are read and compared here)."""
    found = await session.scalars(
        select(Escalation)
        .where(Escalation.patient_id == patient_id, Escalation.status == EscalationStatus.OPEN)
        .order_by(Escalation.id)
    )
    return next((e for e in found if e.category == Category.PATIENT_REQUEST.value), None)
