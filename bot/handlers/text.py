"""Free text: route it by who wrote it and where they are in their flows."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update

from bot.checkin.rules import USE_QUESTIONS
from bot.core.models import Counselor, Patient, PatientStatus, utcnow
from bot.enrollment import consent as consent_rules
from bot.handlers import (
    aftercare,
    consent,
    crisis,
    medication,
    onboarding,
    schedule,
    screener,
    settings,
    sos,
    tone,
)
from bot.handlers import checkin as checkin_handlers
from bot.handlers import coping as coping_handlers
from bot.handlers.base import Context, Turn, turn
from bot.handlers.consent_update import show_update
from bot.handlers.fallback import answer_stranger, counselor_help
from bot.risk import RiskLevel, Screening, cssrs, safety_plan
from bot.risk.promise import Promise
from bot.waiting import Waiting, waiting_for


async def on_text(update: Update, context: Context) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    async with turn(update, context, waiting=True) as t:
        person = t.person
        if sos.is_button(t.runtime, message.text):
            await sos.answer(t)  # the "Help now" button under the chat: before anything else reads the text
        elif isinstance(person, Counselor):
            await counselor_help(t, person)
        elif not isinstance(person, Patient):
            await answer_stranger(t)
        elif person.status is PatientStatus.CONSENT_PENDING:
            # The crisis lines first (nothing recorded or told: they have not agreed yet); consent can wait.
            if not await crisis.respond_unshared(t, person, message.text, Promise.NOT_YET_SHARED):
                await t.reply("consent.required")
                await consent.show_consent(t)
        elif person.status is PatientStatus.ONBOARDING:
            if not await _risk_in_set_up(t, person, message.text):
                await onboarding.on_typed_answer(t, person, message.text)
        elif person.status is PatientStatus.CONSENT_REVOKED:
            if not await crisis.respond_unshared(t, person, message.text):
                await consent.show_revoked_limits(t)
        elif person.status is PatientStatus.DISCHARGED:
            await t.reply("discharged.note")
        elif person.status is PatientStatus.AFTERCARE:
            await aftercare.on_text(t, person, message.text)  # the crisis path stays open (issue 22)
        else:
            await _from_active_patient(t, person, message.text)


async def _risk_in_set_up(t: Turn, patient: Patient, text: str) -> bool:
    """A patient in set-up has agreed to share with their care team: what they type is screened before it is
    taken as a setting (a time zone, a time), and a risk is answered as an active patient's is, the text
    going nowhere else; the crisis path's own flows (a safety-plan step, the screener, an exercise offered by
    a crisis reply, "are you safe right now?") take the text as they would an active patient's. True if the
    text was taken."""
    waiting = t.waiting
    assert waiting is not None  # on_text's turn reads it with the patient
    screened = t.runtime.content.risk.screen(text)
    screening = screened.without_question()  # the semantic layer's question comes last
    plan = waiting.plan
    if safety_plan.editing(plan, utcnow()) is not None:
        assert plan is not None
        await crisis.typed_in_plan(t, patient, plan, text, screening)
        return True
    if await crisis.respond(t, patient, screening, text, source="message") is not crisis.Reply.NONE:
        return True
    if waiting.screen is not None:  # the screener a crisis opened
        await screener.on_typed(t, patient, waiting.screen, text)
        return True
    if waiting.exercise is not None:  # an exercise a crisis reply offered
        await coping_handlers.on_typed(t, waiting.exercise, text)
        return True
    if await crisis.typed_safety_answer(t, patient, text):
        return True
    return await crisis.ask_semantic_question(t, patient, screened)


async def _from_active_patient(t: Turn, patient: Patient, text: str) -> None:
    """Everything an active patient types is screened first, and a risk is answered at once; then the text
    answers whatever is waiting for it: a setting being typed, a safety-plan step, a screener question, an
    exercise under way, a check-in question. A crisis reply (high or imminent) is the only answer: what else
    waited is set aside (see `crisis.set_aside`) and the text goes nowhere else. A question from the model
    alone (the rules found nothing to ask about) comes after that answer and never takes the text from it,
    and not while the patient's last "I'm safe" is recent (`crisis.ask_if_safe`)."""
    screened = t.runtime.content.risk.screen(text)
    screening = screened.without_question()
    now = utcnow()
    waiting = t.waiting
    assert waiting is not None  # on_text's turn reads it with the patient
    plan = waiting.plan
    if safety_plan.editing(plan, now) is not None:
        assert plan is not None
        await crisis.typed_in_plan(t, patient, plan, text, screening)
        return
    checkin = waiting.checkin
    if checkin is not None and checkin.step in USE_QUESTIONS and crisis.only_use(screening):
        # "What did you use?" answered in words that name a use: the check-in tiers it (and tells the team).
        await checkin_handlers.on_typed(t, patient, checkin, text)
        return
    reply = await crisis.respond(t, patient, screening, text, source="message")
    if reply is crisis.Reply.CRISIS:
        return
    if (
        reply is crisis.Reply.NONE
        and not screened.semantic_question  # the layer's "are you safe right now?" comes first
        and await _new_consent_first(t, patient, screening, waiting)
    ):
        return  # a new consent version: their words wait until they agree (a risk was answered above)
    answered = reply is crisis.Reply.ASKED
    if answered:  # the answer may have opened the screener
        waiting = await waiting_for(t.session, patient.id, now)
    advised = not answered and await crisis.answer_withdrawal(t, patient, text)
    if advised:  # its own advice instead of the general offer of an exercise
        screening = Screening(RiskLevel.NONE)
    handled = await _answer_waiting(t, patient, text, screening, answered, waiting) or advised
    asked = False
    if not answered and not advised and waiting.screen is None:
        asked = await crisis.ask_semantic_question(t, patient, screened)
    if not asked and not handled:
        await tone.answer_unhandled(t, patient, text)


async def _new_consent_first(t: Turn, patient: Patient, screening: Screening, waiting: Waiting) -> bool:
    """Ask an active patient to agree to a new consent version before their words go on, unless they might
    be answering a safety question (a screener question, "are you safe right now?"): that answer comes
    first, and the new version is asked at their next message."""
    if screening.level is not RiskLevel.NONE or waiting.screen is not None:
        return False
    if not consent_rules.outdated_version(patient, waiting.consent_version):
        return False
    within = timedelta(minutes=t.runtime.settings.cssrs_unanswered_minutes)
    if await cssrs.awaiting_safety_answer(t.session, patient.id, utcnow(), within) is not None:
        return False
    await show_update(t, patient)
    return True


async def _answer_waiting(
    t: Turn, patient: Patient, text: str, screening: Screening, answered: bool, waiting: Waiting
) -> bool:
    """Give the text to what waits for it; False if nothing did. A screener question comes before anything
    typed after a button (a medicine's name, a reply to the team, a setting): its answer is never taken for
    one of those."""
    if waiting.screen is not None and not answered:
        await screener.on_typed(t, patient, waiting.screen, text)
        return True
    if await medication.on_typed_answer(t, patient, text):  # a medicine's name, a day, a reply to the team
        return True
    if patient.onboarding_step is not None:
        await settings.on_typed(t, patient, text)
        return True
    if waiting.exercise is not None:
        await coping_handlers.on_typed(t, waiting.exercise, text)
        return True
    if waiting.checkin is not None:
        await checkin_handlers.on_typed(t, patient, waiting.checkin, text)
        return True
    if answered:
        return True
    if waiting.reason is not None:
        await schedule.on_reason(t, patient, waiting.reason, text)
        if screening.level is RiskLevel.MODERATE:
            await crisis.offer_exercise(t)
        return True
    if screening.level is RiskLevel.MODERATE:
        await crisis.offer_exercise(t)
        return True
    return await crisis.typed_safety_answer(t, patient, text)
