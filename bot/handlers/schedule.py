"""Sessions on the patient's side: reminders (planned into the outbox), their RSVP buttons, /schedule.

The rules (occurrences, which reminders are due, answers) are in `bot.schedule.rules`; this module renders
them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from telegram import Update

from bot.careteam import flags
from bot.careteam.callbacks import RowEvent
from bot.careteam.notices import render_notice
from bot.core.models import Attendance, Patient, Priority, Rsvp, utcnow
from bot.core.people import assigned_counselors
from bot.handlers.base import Context, Turn, turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import patient_button, patient_only
from bot.outbox import store as outbox
from bot.schedule import rules
from bot.schedule.callbacks import (
    NOTICE_KEY,
    RSVP,
    SKIP_REASON,
    NoticeKey,
    RsvpButton,
    SkipReason,
    notices_of,
)
from bot.schedule.jobs import describe, when, zone_name

log = logging.getLogger(__name__)

LIST_DAYS = 7
REASON_LIMIT = 500
# "Can't make it" is told to the care team this long after the tap, unless the patient's reason (or Skip)
# comes first: then one notice, with the reason, instead of two.
REASON_WAIT = timedelta(minutes=10)


# ---- /schedule ---------------------------------------------------------------------------------------------


@patient_only
async def schedule_command(t: Turn, patient: Patient) -> None:
    now = utcnow()
    items = await rules.upcoming(t.session, patient.id, now, now + timedelta(days=LIST_DAYS))
    if not items:
        await t.reply("schedule.list_empty", days=LIST_DAYS)
        return
    lines = [describe(t.runtime, item, patient, "schedule.list_item") for item in items]
    await t.reply("schedule.list", days=LIST_DAYS, items="\n".join(lines))


# ---- RSVP --------------------------------------------------------------------------------------------------


@patient_button(RSVP, refused="input.not_for_role")
async def on_button(t: Turn, patient: Patient, button: RsvpButton) -> None:
    found = await rules.find_occurrence(t.session, patient.id, button.session_id, button.occurrence)
    now = utcnow()
    if found is None or found.occurrence.end <= now:
        t.answer(t.text("schedule.gone"))
        t.clear_buttons()
        return
    response = button.choice
    row = await rules.answer(t.session, patient, found, response, now)
    log.info("event=schedule.rsvp patient_id=%s session_id=%s", patient.id, found.session.id)
    t.clear_buttons()
    # A changed answer: a "can't make it" still held back is no longer news.
    await outbox.cancel(t.session, notices_of(row.id, "cannot"), reason="answer_changed")
    if response is Rsvp.CANNOT:
        await _tell_counselor(t, patient, found, row, reason=None, after=REASON_WAIT)
        await _flag_a_run_of_missed_sessions(t, patient, row, now)
        skip = SKIP_REASON.pack(SkipReason(row.id))
        await t.reply("schedule.ask_reason", buttons=[[(t.text("schedule.skip_button"), skip)]])
    else:
        await t.reply(f"schedule.thanks_{response}")


async def _flag_a_run_of_missed_sessions(t: Turn, patient: Patient, row: Attendance, now: datetime) -> None:
    """Flagged once per run, when it reaches MISSED_SESSIONS_FLAG (for the digest and the care team)."""
    threshold = t.runtime.settings.missed_sessions_flag
    if await rules.declined_in_a_row(t.session, patient.id, now) != threshold:
        return
    raised = await flags.raise_flag(
        t.session, patient, flags.FlagKind.MISSED_SESSIONS, now, count=threshold, attendance_id=row.id
    )
    if await outbox.enqueue(t.session, [render_notice(t.runtime, n, RowEvent(row.id)) for n in raised]):
        t.wake_outbox()


async def on_skip(update: Update, context: Context) -> None:
    """No reason after "Can't make it". A tap that finds nothing to skip just takes the button away."""
    query = update.callback_query
    assert query is not None
    button = SKIP_REASON.parse(query.data)
    async with turn(update, context) as t:
        if button is None:
            answer_expired_button(t)
            return
        patient = t.active_patient
        row = await t.session.get(Attendance, button.attendance_id)
        t.clear_buttons()
        if patient is None or row is None or row.patient_id != patient.id or not row.awaiting_reason:
            return
        row.awaiting_reason = False
        if await outbox.hasten(t.session, notices_of(row.id, "cannot"), now=utcnow()):
            t.wake_outbox()
        await t.reply("schedule.reason_skipped")


async def on_reason(t: Turn, patient: Patient, row: Attendance, text: str) -> None:
    """The optional reason after "Can't make it": kept, and passed to the care team."""
    row.awaiting_reason = False
    reason = " ".join(text.split())[:REASON_LIMIT]
    found = await rules.find_occurrence(t.session, patient.id, row.session_id, row.occurrence)
    if not reason or found is None:
        await t.reply("schedule.reason_skipped")
        return
    row.reason = reason
    # The notice without the reason, if still held back, gives way to this one.
    await outbox.cancel(
        t.session, notices_of(row.id, "cannot"), outbox.unclaimed(utcnow()), reason="reason_given"
    )
    await _tell_counselor(t, patient, found, row, reason=reason)
    await t.reply("schedule.reason_thanks")


async def _tell_counselor(
    t: Turn,
    patient: Patient,
    found: rules.Upcoming,
    row: Attendance,
    *,
    reason: str | None,
    after: timedelta = timedelta(0),
) -> None:
    """The care team's notice, in each counselor's own time zone (named, as the patient's may differ)."""
    runtime, now = t.runtime, utcnow()
    messages = []
    for counselor in await assigned_counselors(t.session, patient.id):
        if counselor.chat_id is None:
            continue
        text = runtime.text(
            "schedule.care_reason" if reason else "schedule.care_cannot",
            counselor.language,
            alias=patient.alias,
            title=found.title,
            when=when(runtime, found.occurrence.start, counselor.timezone, counselor.language),
            zone=zone_name(runtime, found.occurrence.start, counselor.timezone),
            reason=reason,
        )
        part: Literal["cannot", "reason"] = "reason" if reason else "cannot"
        messages.append(
            outbox.Planned(
                key=NOTICE_KEY.pack(NoticeKey(row.id, part, counselor.id, int(now.timestamp()))),
                kind="notice",
                chat_id=counselor.chat_id,
                text=text,
                due_at=now + after,
                priority=Priority.NORMAL,
                counselor_id=counselor.id,
                subject_patient_id=patient.id,
            )
        )
    if await outbox.enqueue(t.session, messages):
        t.wake_outbox()
