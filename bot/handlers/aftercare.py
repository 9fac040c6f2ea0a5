"""Aftercare on Telegram: the offer's buttons at discharge, the check-in's buttons, and what a patient in
aftercare types (the crisis path, the screener and the safety plan, as for an active patient). Rules are in
bot/medcare/aftercare.py; the offer is sent by `python -m bot discharge` and the check-ins by the scheduler
(bot/medcare/jobs.py)."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.core.models import AftercareCheckIn, Patient, PatientStatus, utcnow
from bot.handlers import coping as coping_handlers
from bot.handlers import crisis, screener
from bot.handlers import safety_plan as plan_handlers
from bot.handlers.base import Turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import patient_button
from bot.medcare import aftercare as rules
from bot.medcare.callbacks import AFTERCARE_ANSWER, AFTERCARE_CHOICE, AftercareAnswer, AftercareChoice
from bot.medcare.prompts import aftercare_question
from bot.risk import safety_plan
from bot.risk.use import Advice

log = logging.getLogger(__name__)

# After a reported use in aftercare: the advice for any use after a break (bot.risk.use)
USE_ADVICE = (Advice.TOLERANCE, Advice.NOT_ALONE, Advice.NALOXONE)


@patient_button(AFTERCARE_CHOICE, active=False)
async def on_choice(t: Turn, patient: Patient, button: AftercareChoice) -> None:
    now = utcnow()
    if button.choice == "stop":
        if await rules.stop(t.session, patient, now):
            t.clear_buttons()
            log.info("event=aftercare.stopped patient_id=%s", patient.id)
            await t.reply("aftercare.stopped")
        else:
            answer_expired_button(t)
        return
    if not await rules.offer_open(t.session, patient, now):
        answer_expired_button(t)
        return
    t.clear_buttons()
    if button.choice == "no":
        rules.decline(t.session, patient, now)
        log.info("event=aftercare.declined patient_id=%s", patient.id)
        await t.reply("aftercare.declined")
        return
    planned = await rules.accept(t.session, patient, now)
    log.info("event=aftercare.accepted patient_id=%s", patient.id)
    first = min(planned, key=lambda row: row.week)
    await t.send(
        t.text(
            "aftercare.accepted", time=first.due_at.astimezone(ZoneInfo(patient.timezone)).strftime("%H:%M")
        ),
        keyboard=t.help_now_keyboard(),
    )


@patient_button(AFTERCARE_ANSWER, active=False)
async def on_answer(t: Turn, patient: Patient, button: AftercareAnswer) -> None:
    row = await t.session.get(AftercareCheckIn, button.checkin_id, with_for_update=True)
    if row is None or patient.status is not PatientStatus.AFTERCARE:
        answer_expired_button(t)
        return
    asked = rules.Question(button.field)
    try:
        following = rules.answer(row, patient.id, asked, button.value, utcnow())
    except rules.Closed:
        t.answer(t.text("aftercare.closed"))
        return
    except rules.Invalid:
        answer_expired_button(t)
        return
    t.clear_buttons()
    log.info("event=aftercare.answered patient_id=%s checkin_id=%s question=%s", patient.id, row.id, asked)
    if following is not None:
        text, rows = aftercare_question(t.runtime, t.language, row)
        await t.send(text, buttons=rows)
        return
    await _finish(t, patient, row)


async def _finish(t: Turn, patient: Patient, row: AftercareCheckIn) -> None:
    remaining = await rules.remaining(t.session, patient.id)
    parts = [t.text("aftercare.thanks", last=not remaining.weeks)]
    if row.used:  # the care team is told, as of a use in an active patient's check-in (a flag)
        if await tell_care_team(t.runtime, t.session, patient, FlagKind.USE_REPORTED):
            t.wake_outbox()
        log.info("event=aftercare.use_reported patient_id=%s checkin_id=%s", patient.id, row.id)
        parts.append(t.text("use.told_flag"))
        parts += [t.text(f"use.advice.{advice.value}") for advice in USE_ADVICE]
    if row.connected == "help":
        if await tell_care_team(t.runtime, t.session, patient, FlagKind.AFTERCARE_HELP):
            t.wake_outbox()
        parts.append(t.text("aftercare.help_told"))
    elif row.connected == "not_yet":
        parts.append(t.text("aftercare.find_care"))
    await t.send("\n\n".join(parts))


async def on_text(t: Turn, patient: Patient, text: str) -> None:
    """A patient in aftercare typed: screened for risk first, as everything an active patient types (a crisis
    reply, the screener, "are you safe right now?" all work, and reach the care team); then a safety-plan step
    or a screener question being answered; anything else gets a short note on what aftercare is."""
    screened = t.runtime.content.risk.screen(text)
    screening = screened.without_question()  # the semantic layer's page counts, its question comes last
    waiting = t.waiting
    now = utcnow()
    plan = waiting.plan if waiting is not None else None
    if safety_plan.editing(plan, now) is not None:
        assert plan is not None
        await crisis.respond(t, patient, screening.as_question(), text, source="safety_plan")
        await plan_handlers.on_typed(t, patient, plan, text)
        return
    reply = await crisis.respond(t, patient, screening, text, source="message")
    if reply is not crisis.Reply.NONE:
        return
    if waiting is not None and waiting.screen is not None:
        await screener.on_typed(t, patient, waiting.screen, text)
        return
    if waiting is not None and waiting.exercise is not None:  # an exercise offered on the crisis path
        await coping_handlers.on_typed(t, waiting.exercise, text)
        return
    if await crisis.typed_safety_answer(t, patient, text):
        return
    # As for an active patient: what only the semantic layer worries about is asked (not in its cool-down).
    verdict = screened.semantic
    if verdict is not None and screened.semantic_question and await crisis.ask_if_safe(t, patient, verdict):
        return
    await t.reply("aftercare.note", keyboard=t.help_now_keyboard())
