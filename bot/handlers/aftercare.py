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
from bot.handlers import checkin as checkin_handlers
from bot.handlers import coping as coping_handlers
from bot.handlers import crisis, screener
from bot.handlers.base import Turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import in_care_only, patient_button
from bot.medcare import aftercare as rules
from bot.medcare.callbacks import AFTERCARE_ANSWER, AFTERCARE_CHOICE, AftercareAnswer, AftercareChoice
from bot.medcare.prompts import aftercare_question, aftercare_stop_row
from bot.risk import safety_plan

log = logging.getLogger(__name__)


@in_care_only
async def stop_command(t: Turn, patient: Patient) -> None:
    """/stopcheckins: a patient in aftercare can stop the check-ins at any time, not only from under a
    check-in's first message. One tap on "Stop these check-ins" confirms (a command is easy to send by
    mistake: /help shows it as a link); anyone else gets what /help tells them."""
    if patient.status is not PatientStatus.AFTERCARE:
        await t.reply(f"help.patient_{patient.status.value}")
        return
    log.info("event=aftercare.stop_asked patient_id=%s", patient.id)
    await t.reply("aftercare.stop_ask", buttons=[aftercare_stop_row(t.runtime, t.language)])


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
    await _after_answer(t, patient, row, asked, following)


async def _after_answer(
    t: Turn,
    patient: Patient,
    row: AftercareCheckIn,
    asked: rules.Question,
    following: rules.Question | None,
    words: str | None = None,
) -> None:
    log.info("event=aftercare.answered patient_id=%s checkin_id=%s question=%s", patient.id, row.id, asked)
    if rules.use_settled(row, asked, following):
        # As in the daily check-in: told by what was used (a page now for opioids, fentanyl, not knowing,
        # using alone or injecting; else a flag), with the advice that fits (naloxone, not using alone...).
        log.info("event=aftercare.use_reported patient_id=%s checkin_id=%s", patient.id, row.id)
        await checkin_handlers.report_use(t, patient, rules.use_report(row), words=words, source="aftercare")
    if following is not None:
        text, rows = aftercare_question(t.runtime, t.language, row)
        await t.send(text, buttons=rows)
        return
    await _finish(t, patient, row)


async def _typed_use(t: Turn, patient: Patient, row: AftercareCheckIn, text: str) -> None:
    """Words typed while "What did you use?" or "Were you alone, or did you inject?" is asked: read as the
    daily check-in reads them."""
    asked = rules.Question(row.step or rules.Question.USE_WHAT)
    how = asked is rules.Question.USE_HOW
    report = checkin_handlers.typed_use(t, text, how=how, so_far=rules.use_report(row))
    if report is None:
        await t.reply("checkin.retry.buttons")
        return
    try:
        following = rules.answer_use(row, patient.id, asked, report, utcnow())
    except rules.Closed:
        await t.reply("aftercare.closed")
        return
    await _after_answer(t, patient, row, asked, following, words=None if how else text)


async def _finish(t: Turn, patient: Patient, row: AftercareCheckIn) -> None:
    remaining = await rules.remaining(t.session, patient.id)
    parts = [t.text("aftercare.thanks", last=not remaining.weeks)]
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
        await crisis.typed_in_plan(t, patient, plan, text, screening)
        return
    asking_use = await rules.asking_about_use(t.session, patient.id, now)
    if asking_use is not None and crisis.only_use(screening):
        # "What did you use?" answered in words that name a use: the check-in tiers it (and tells the team).
        await _typed_use(t, patient, asking_use, text)
        return
    reply = await crisis.respond(t, patient, screening, text, source="message")
    if reply is not crisis.Reply.NONE:
        return
    if waiting is not None and waiting.screen is not None:
        await screener.on_typed(t, patient, waiting.screen, text)
        return
    if asking_use is not None:
        await _typed_use(t, patient, asking_use, text)
        await crisis.ask_semantic_question(
            t, patient, screened
        )  # as for an active patient (bot.handlers.text)
        return
    if waiting is not None and waiting.exercise is not None:  # an exercise offered on the crisis path
        await coping_handlers.on_typed(t, waiting.exercise, text)
        return
    if await crisis.typed_safety_answer(t, patient, text):
        return
    # As for an active patient: what only the semantic layer worries about is asked (not in its cool-down).
    if await crisis.ask_semantic_question(t, patient, screened):
        return
    await t.reply("aftercare.note", keyboard=t.help_now_keyboard())
