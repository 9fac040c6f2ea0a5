"""Medication support's time-driven work: close the day's dose questions left unanswered, ask who is due,
ask once more after "Not yet", and queue refill or shot reminders. The messages go through the outbox, in the
same transaction as the rows they belong to; planning twice creates nothing new (keys, unique days)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.core.db import transaction
from bot.core.models import utcnow
from bot.medcare import medication, prompts
from bot.outbox import store as outbox

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def medication_tick(runtime: Runtime) -> int:
    now = utcnow()
    queued = 0
    async with transaction(runtime.sessions) as session:
        closed = await medication.close_expired(session, now)
        if closed:
            log.info("event=dose.closed count=%d", closed)
        again = []
        for dose, patient, plan in await medication.due_again(session, now):
            if outbox.may_message_patient(patient) and plan.dose_time is not None:
                log.info("event=dose.asked_again patient_id=%s dose_id=%s", patient.id, dose.id)
                again.append(prompts.dose_question(runtime, patient, plan, dose, now, again=True))
        queued += await outbox.enqueue(session, again)
    async with transaction(runtime.sessions) as session:
        planned: list[outbox.Planned] = []
        for plan, patient in await medication.plans_to_remind(session):
            due = await medication.begin_due(session, plan, patient, now)
            if due is not None:
                log.info("event=dose.asked patient_id=%s dose_id=%s", patient.id, due.id)
                planned.append(prompts.dose_question(runtime, patient, plan, due, now, again=False))
            planned.extend(
                prompts.supply_reminder(runtime, patient, plan, before, now)
                for before in medication.supply_due(plan, patient, now)
            )
        queued += await outbox.enqueue(session, planned)
    if queued:
        runtime.wake_outbox()
    return queued
