"""Time-driven work of medication support (close the day's dose questions left unanswered, ask who is due,
ask once more after "Not yet", queue refill or shot reminders) and of aftercare (`aftercare_tick`). The
messages go through the outbox, in the same transaction as the rows they belong to; planning twice creates
nothing new (keys, unique days)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.careteam.callbacks import UseEvent
from bot.checkin.jobs import USE_ANSWER_WAIT, tell_unanswered_use
from bot.core.db import transaction
from bot.core.models import AftercareCheckIn, Patient, utcnow
from bot.medcare import aftercare, medication, prompts
from bot.medcare.callbacks import AFTERCARE_KEY, AftercareKey
from bot.outbox import store as outbox
from bot.outbox.markup import Rows

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
        planned: list[outbox.Planned] = []
        for row in await aftercare.use_unanswered(session, now, USE_ANSWER_WAIT):
            row_id = row.id
            following: list[outbox.Planned] = []
            try:  # one row that fails (its page) is tried again next tick; the others go on
                async with session.begin_nested():
                    report = aftercare.use_report(row)
                    aftercare.give_up_on_use_answer(row, now)
                    patient = await session.get_one(Patient, row.patient_id)
                    log.info("event=aftercare.use_unanswered patient_id=%s checkin_id=%s", patient.id, row_id)
                    event = UseEvent("aftercare-use", row_id)
                    count = await tell_unanswered_use(
                        runtime, session, patient, report, source="aftercare", event=event, now=now
                    )
                    if row.step is not None and patient.unreachable_since is None:  # the check-in goes on
                        text, buttons = prompts.aftercare_question(runtime, patient.language, row)
                        following.append(
                            _aftercare_message(patient, row, "aftercare_next", text, buttons, now)
                        )
            except Exception as error:
                log.error(
                    "event=aftercare.use_unanswered_error checkin_id=%s kind=%s", row_id, type(error).__name__
                )
                continue
            told += count
            planned.extend(following)
        closed = await aftercare.close_expired(session, now)
        if closed:
            log.info("event=aftercare.closed count=%d", len(closed))
        for row, patient in await aftercare.open_due(session, now):
            log.info(
                "event=aftercare.asked patient_id=%s checkin_id=%s week=%s", patient.id, row.id, row.week
            )
            if patient.unreachable_since is not None:
                continue
            weeks = await aftercare.weeks_since_discharge(session, patient, row, now)
            text, buttons = prompts.aftercare_prompt(runtime, patient, row, weeks)
            planned.append(_aftercare_message(patient, row, "aftercare_prompt", text, buttons, now))
        for patient in await aftercare.end_finished(session, now):
            log.info("event=aftercare.ended patient_id=%s", patient.id)
            if patient.unreachable_since is None:
                planned.append(
                    outbox.to_patient(
                        patient,
                        AFTERCARE_KEY.pack(AftercareKey("aftercare_ended", patient.id)),
                        "aftercare_ended",
                        runtime.text("aftercare.ended", patient.language),
                        due_at=now,
                        in_program=False,
                    )
                )
        queued = told + await outbox.enqueue(session, planned)
    if queued:
        runtime.wake_outbox()
    return queued


def _aftercare_message(
    patient: Patient, row: AftercareCheckIn, kind: str, text: str, buttons: Rows, now: datetime
) -> outbox.Planned:
    """A check-in's question, sent by the bot on its own (once per check-in and kind), to a patient out of
    the program (in aftercare)."""
    key = AFTERCARE_KEY.pack(AftercareKey(kind, row.id))
    return outbox.to_patient(
        patient, key, kind, text, buttons=buttons, due_at=now, expires_at=row.closes_at, in_program=False
    )
