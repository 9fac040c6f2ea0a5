"""The risk feature's time-driven work: re-paging (see paging) and closing screeners left unanswered."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.db import transaction
from bot.core.models import Patient, utcnow
from bot.risk import RiskLevel, cssrs, paging
from bot.risk import escalation as escalations

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def close_stalled(runtime: Runtime) -> None:
    """The scheduler's job: a screener left unanswered is closed, and the care team hears of it. After an
    ambiguous message, silence is not taken as "no": it raises a high escalation for a counselor to check."""
    wait = timedelta(minutes=runtime.settings.cssrs_unanswered_minutes)
    paged = 0
    async with transaction(runtime.sessions) as session:
        for screen in await cssrs.stalled(session, utcnow(), wait):
            engaged = bool(screen.answers)
            risk = cssrs.close_unanswered(screen, utcnow())
            log.info("event=cssrs.unanswered patient_id=%s screen_id=%s", screen.patient_id, screen.id)
            patient = await session.get(Patient, screen.patient_id)
            resolved = screen.escalation_id is not None and await cssrs.linked_open(session, screen) is None
            # Nothing to add when a counselor already closed the case, or the patient said no so far.
            if patient is None or resolved or (engaged and risk is cssrs.ColumbiaRisk.NONE):
                continue
            level = max(cssrs.LEVELS[risk], RiskLevel.HIGH)
            raised = await escalations.raise_escalation(
                session,
                patient,
                level,
                await cssrs.category_of(session, screen),
                "cssrs_unanswered",
                None,
                utcnow(),
                runtime.settings,
            )
            screen.escalation_id = raised.escalation.id
            if raised.page_now:
                paged += await paging.page(runtime, session, raised.escalation, utcnow())
    if paged:
        runtime.wake_outbox()
