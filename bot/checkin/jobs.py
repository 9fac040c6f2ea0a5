"""The check-in's time-driven work: close expired check-ins (flagging runs of missed ones), nudge once, and
prompt who is due."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.careteam import flags
from bot.careteam.callbacks import RowEvent, UseEvent
from bot.careteam.notices import render_notice
from bot.checkin import prompts
from bot.checkin import rules as checkin
from bot.core.db import transaction
from bot.core.models import CheckInSource, CheckInStatus, Patient, utcnow
from bot.outbox import store as outbox
from bot.risk import Category, RiskLevel, Screening, paging
from bot.risk import escalation as escalations
from bot.risk.use import Tier, UseReport

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# "What did you use?" (or "Were you alone?") left this long after a "yes": the care team is told without the
# answer, as a page unless what was used is already known to need none. Short: the patient may be unable to
# answer.
USE_ANSWER_WAIT = timedelta(minutes=10)


async def checkin_tick(runtime: Runtime) -> None:
    """Close expired check-ins (flagging long runs of missed ones), nudge once, and prompt who is due. The
    messages go through the outbox, in the same transaction as the check-ins they belong to."""
    queued = await _use_unanswered(runtime)
    queued += await _close_expired(runtime)
    now = utcnow()
    async with transaction(runtime.sessions) as session:
        after = timedelta(minutes=runtime.settings.checkin_nudge_minutes)
        nudges = []
        for row, patient in await checkin.due_nudges(session, now, after=after):
            log.info("event=checkin.nudged patient_id=%s checkin_id=%s", patient.id, row.id)
            nudges.append(prompts.nudge(runtime, patient, row))
        queued += await outbox.enqueue(session, nudges)
    async with transaction(runtime.sessions) as session:
        patients = list(
            await session.scalars(
                select(Patient).where(outbox.may_message(), Patient.checkin_time.is_not(None))
            )
        )
        queued += await outbox.enqueue(session, await prompts.scheduled_prompts(runtime, session, patients))
    if queued:
        runtime.wake_outbox()


async def _close_expired(runtime: Runtime) -> int:
    now = utcnow()
    threshold = runtime.settings.missed_checkins_flag
    async with transaction(runtime.sessions) as session:
        notices: list[outbox.Planned] = []
        for row in await checkin.close_expired(session, now):
            log.info("event=checkin.closed checkin_id=%s status=%s", row.id, row.status)
            if row.status is not CheckInStatus.MISSED or row.source is not CheckInSource.SCHEDULED:
                continue
            if await checkin.missed_in_a_row(session, row.patient_id) != threshold:
                continue  # flagged once per run of missed days, when it reaches the threshold
            patient = await session.get_one(Patient, row.patient_id)
            raised = await flags.raise_flag(
                session, patient, flags.FlagKind.MISSED_CHECKINS, now, count=threshold, checkin_id=row.id
            )
            notices.extend(render_notice(runtime, n, RowEvent(row.id)) for n in raised)
        queued = await outbox.enqueue(session, notices)
    return queued


async def _use_unanswered(runtime: Runtime) -> int:
    """A "yes" to use with what or how left unanswered: tell the care team by what is known (not knowing
    what was used counts as high: a page). The check-in moves past the question."""
    now = utcnow()
    queued = 0
    async with transaction(runtime.sessions) as session:
        for row in await checkin.use_unanswered(session, now, USE_ANSWER_WAIT):
            report = checkin.use_report(row)
            checkin.give_up_on_use_answer(row, now)
            patient = await session.get_one(Patient, row.patient_id)
            log.info("event=checkin.use_unanswered checkin_id=%s", row.id)
            queued += await tell_unanswered_use(
                runtime, session, patient, report, source="checkin", event=UseEvent("use", row.id), now=now
            )
    return queued


async def tell_unanswered_use(
    runtime: Runtime,
    session: AsyncSession,
    patient: Patient,
    report: UseReport | None,
    *,
    source: str,
    event: UseEvent,
    now: datetime,
) -> int:
    """Tell the care team of a use whose what or how was left unanswered, by what is known (not knowing what
    was used counts as high: a page); how many messages were queued. Shared with the aftercare check-ins."""
    tier = report.tier if report is not None else Tier.HIGH
    log.info("event=use.unanswered patient_id=%s source=%s", patient.id, source)
    screening = Screening(RiskLevel.HIGH, (Category.RELAPSE,), ())
    await escalations.record_signal(session, patient, screening, source, now, runtime.settings)
    if tier is Tier.HIGH:
        raised = await escalations.raise_escalation(
            session, patient, RiskLevel.HIGH, Category.RELAPSE, source, None, now, runtime.settings
        )
        return await paging.page(runtime, session, raised.escalation, now) if raised.page_now else 0
    notices = await flags.raise_flag(session, patient, flags.FlagKind.USE_REPORTED, now)
    return await outbox.enqueue(session, [render_notice(runtime, n, event) for n in notices])
