"""The risk feature's time-driven work: re-paging (see paging), closing screeners left unanswered, and
following up "are you safe right now?" left unanswered."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.core.db import transaction
from bot.core.models import CRISIS_PATH, Escalation, EscalationStatus, Patient, utcnow
from bot.risk import Category, RiskLevel, cssrs, paging
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


async def follow_up_safety_checks(runtime: Runtime) -> None:
    """The scheduler's job: "are you safe right now?" left unanswered is not taken as "safe". After a
    declined screener that suspicious words or a questionnaire's safety item (and no alert yet) led to,
    silence raises a high escalation, as an unanswered screener does; otherwise (an alert is already open, a
    softened phrase, the model's guess) the care team gets a flag."""
    wait = timedelta(minutes=runtime.settings.cssrs_unanswered_minutes)
    told = 0
    async with transaction(runtime.sessions) as session:
        now = utcnow()
        for question in await cssrs.unanswered_safety_checks(session, now, wait):
            pid = question.patient_id
            patient = await session.get(Patient, pid)
            how = "none"
            if patient is not None and patient.status in CRISIS_PATH:
                page = (
                    question.reason is cssrs.SafetyReason.DECLINED
                    and question.trigger in (cssrs.Trigger.AMBIGUOUS, cssrs.Trigger.MEASURE)
                    and not await _open_escalation(session, pid)
                )
                if page:
                    raised = await escalations.raise_escalation(
                        session,
                        patient,
                        RiskLevel.HIGH,
                        Category.SUICIDE,
                        "safety_unanswered",
                        None,
                        now,
                        runtime.settings,
                    )
                    if raised.page_now:
                        told += await paging.page(runtime, session, raised.escalation, now)
                    how = "page"
                else:
                    told += await tell_care_team(runtime, session, patient, FlagKind.SAFETY_UNANSWERED)
                    how = "flag"
            cssrs.safety_followed_up(session, pid, how)
            log.info("event=risk.safety_check.unanswered patient_id=%s followed_up=%s", pid, how)
    if told:
        runtime.wake_outbox()


async def _open_escalation(session: AsyncSession, patient_id: int) -> bool:
    found = await session.scalar(
        select(Escalation.id)
        .where(Escalation.patient_id == patient_id, Escalation.status != EscalationStatus.RESOLVED)
        .limit(1)
    )
    return found is not None
