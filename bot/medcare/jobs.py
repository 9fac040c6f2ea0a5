"""Time-driven work of medication support (close the day's dose questions left unanswered, ask who is due,
ask once more after "Not yet", queue refill or shot reminders) and of aftercare (`aftercare_tick`). The
messages go through the outbox, in the same transaction as the rows they belong to; planning twice creates
nothing new (keys, unique days)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.checkin.jobs import USE_ANSWER_WAIT, tell_unanswered_use
from bot.core.db import transaction
from bot.core.models import Patient, Priority, utcnow
from bot.medcare import aftercare, medication, prompts
from bot.medcare.callbacks import AFTERCARE_KEY, AftercareKey
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


async def aftercare_tick(runtime: Runtime) -> int:
    """Tell the care team of a use whose what or how was left unanswered (as for the daily check-in), close
    aftercare check-ins left open too long, open those that came due (their first question goes out), and end
    aftercare for whom nothing is left (a last word goes out)."""
    now = utcnow()
    async with transaction(runtime.sessions) as session:
        told = 0
        for row in await aftercare.use_unanswered(session, now, USE_ANSWER_WAIT):
            report = aftercare.use_report(row)
            aftercare.give_up_on_use_answer(row, now)
            patient = await session.get_one(Patient, row.patient_id)
            log.info("event=aftercare.use_unanswered patient_id=%s checkin_id=%s", patient.id, row.id)
            told += await tell_unanswered_use(
                runtime, session, patient, report, source="aftercare", key=f"aftercare-use:{row.id}", now=now
            )
        closed = await aftercare.close_expired(session, now)
        if closed:
            log.info("event=aftercare.closed count=%d", len(closed))
        planned: list[outbox.Planned] = []
        for row, patient in await aftercare.open_due(session, now):
            log.info(
                "event=aftercare.asked patient_id=%s checkin_id=%s week=%s", patient.id, row.id, row.week
            )
            if patient.unreachable_since is not None:
                continue
            text, buttons = prompts.aftercare_prompt(runtime, patient, row)
            planned.append(
                outbox.Planned(
                    key=AFTERCARE_KEY.pack(AftercareKey("aftercare_prompt", row.id)),
                    kind="aftercare_prompt",
                    chat_id=patient.chat_id,
                    text=text,
                    buttons=buttons,
                    due_at=now,
                    expires_at=row.closes_at,
                    priority=Priority.NORMAL,
                    # not `patient_id`: the outbox sends those to active patients only (as the goodbye)
                    subject_patient_id=patient.id,
                )
            )
        for patient in await aftercare.end_finished(session, now):
            log.info("event=aftercare.ended patient_id=%s", patient.id)
            if patient.unreachable_since is None:
                planned.append(
                    outbox.Planned(
                        key=AFTERCARE_KEY.pack(AftercareKey("aftercare_ended", patient.id)),
                        kind="aftercare_ended",
                        chat_id=patient.chat_id,
                        text=runtime.text("aftercare.ended", patient.language),
                        due_at=now,
                        priority=Priority.NORMAL,
                        subject_patient_id=patient.id,
                    )
                )
        queued = told + await outbox.enqueue(session, planned)
    if queued:
        runtime.wake_outbox()
    return queued
