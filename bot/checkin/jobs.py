"""The check-in's time-driven work: close expired check-ins (flagging runs of missed ones), nudge once, and
prompt who is due."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.careteam import flags
from bot.careteam.notices import render_notice
from bot.checkin import prompts
from bot.checkin import rules as checkin
from bot.core.db import transaction
from bot.core.models import CheckInSource, CheckInStatus, Patient, utcnow
from bot.outbox import store as outbox

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def checkin_tick(runtime: Runtime) -> None:
    """Close expired check-ins (flagging long runs of missed ones), nudge once, and prompt who is due. The
    messages go through the outbox, in the same transaction as the check-ins they belong to."""
    queued = await _close_expired(runtime)
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
            notices.extend(render_notice(runtime, n, key=str(row.id)) for n in raised)
        queued = await outbox.enqueue(session, notices)
    return queued
