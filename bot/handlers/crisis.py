"""Crisis responses to patients: what the bot says at once when a message shows risk.

The care team's side (alerts, re-pages, their buttons) is in `bot.handlers.alerts`; the rules in
`bot.risk.escalation`. A suicide-adjacent message is followed by the C-SSRS screener
(`bot.handlers.screener`).
"""

from __future__ import annotations

import logging

from telegram import Update

from bot.coping.callbacks import MENU_DATA
from bot.core.models import Patient, utcnow
from bot.handlers import alerts, screener
from bot.handlers import safety_plan as plan_handlers
from bot.handlers.base import Context, Turn, turn
from bot.outbox.markup import Rows
from bot.risk import Category, FollowUp, RiskLevel, Screening, cssrs
from bot.risk import escalation as rules
from bot.risk.callbacks import SAFETY_CHECK, SafetyAnswer

log = logging.getLogger(__name__)


async def respond(t: Turn, patient: Patient, screening: Screening, text: str, *, source: str) -> bool:
    """Answer a risk signal at once: crisis resources for imminent, a kind word for high (with the care team
    told, always: no secret surveillance), or a safety question when an imminent signal came softened.
    Returns True if the patient was answered here (moderate signals are left to the caller)."""
    now = utcnow()
    level = await rules.record_signal(t.session, patient, screening, source, now, t.runtime.settings)
    if level >= RiskLevel.HIGH:
        category = screening.categories[0] if screening.categories else Category.HOPELESS
        raised = await alerts.escalate(t, patient, level, category, source, text)
        if level is RiskLevel.IMMINENT:
            if t.update.update_id in t.runtime.answered_without_database:
                # Its crisis reply went out while the database was down; recorded and paged now, not repeated.
                t.urgent = True
            else:
                await t.reply_urgently(
                    "crisis.imminent",
                    overdose=Category.OVERDOSE in screening.categories,
                    plan_contacts=await plan_handlers.crisis_contacts(t, patient),
                )
        elif category in (Category.RELAPSE, Category.USE_PLAN):
            await t.reply_urgently(
                "crisis.high_relapse", buttons=[[(t.text("crisis.try_exercise_button"), MENU_DATA)]]
            )
        else:
            await t.reply_urgently("crisis.high", buttons=plan_handlers.support_rows(t))
        if screening.follow_up is FollowUp.CSSRS:
            await screener.offer(t, patient, cssrs.Trigger.ALERTED, raised.escalation.id)
        return True
    if screening.follow_up is FollowUp.CSSRS and await screener.offer(
        t, patient, cssrs.Trigger.AMBIGUOUS, None
    ):
        return True
    if screening.follow_up is not None:
        log.info("event=risk.safety_check patient_id=%s follow_up=%s", patient.id, screening.follow_up)
        await t.reply("crisis.safety_check", buttons=_safety_buttons(t))
        return True
    return False


async def structured_signal(
    t: Turn, patient: Patient, level: RiskLevel, category: Category, source: str
) -> RiskLevel:
    """A risk shown by a structured answer (use disclosed, a high craving): recorded like a message's, and
    escalated without words behind it. Returns the level it counted as; the caller tells the patient when
    the care team will see it (a disclosed use always, a craving when it completes a pattern)."""
    screening = Screening(level, (category,), ())
    counted = await rules.record_signal(t.session, patient, screening, source, utcnow(), t.runtime.settings)
    if counted >= RiskLevel.HIGH:
        await alerts.escalate(t, patient, counted, category, source, None)
    return counted


async def ask_if_safe(t: Turn, patient: Patient, probability: float) -> None:
    """The model (not the rules) thinks the message may be high or imminent: ask, page nobody. "I need help
    now" then counts as imminent."""
    log.info("event=risk.model_question patient_id=%s probability=%.2f", patient.id, probability)
    await t.reply("crisis.safety_check", buttons=_safety_buttons(t))


def _safety_buttons(t: Turn) -> Rows:
    return [
        [
            (t.text("crisis.safe_button"), SAFETY_CHECK.pack(SafetyAnswer("safe"))),
            (t.text("crisis.not_safe_button"), SAFETY_CHECK.pack(SafetyAnswer("help"))),
        ]
    ]


async def offer_exercise(t: Turn) -> None:
    await t.reply("crisis.moderate", buttons=[[(t.text("crisis.try_exercise_button"), MENU_DATA)]])


async def on_safety_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    tapped = SAFETY_CHECK.parse(query.data)
    async with turn(update, context) as t:  # the tap is answered after the commit
        t.clear_buttons()
        patient = t.active_patient
        if patient is None or tapped is None:
            return
        if tapped.answer == "safe":
            log.info("event=risk.safety_check.safe patient_id=%s", patient.id)
            await t.reply("crisis.safe_reply")
            return
        screening = Screening(RiskLevel.IMMINENT, (Category.SUICIDE,), (), FollowUp.CSSRS)
        await respond(t, patient, screening, "", source="safety_check")
