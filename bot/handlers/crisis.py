"""Crisis responses to patients: what the bot says at once when a message shows risk.

The care team's side (alerts, re-pages, their buttons) is in `bot.handlers.alerts`; the rules in
`bot.risk.escalation`. A suicide-adjacent message is followed by the C-SSRS screener
(`bot.handlers.screener`).

A crisis reply (high or imminent) is never followed by another flow's words: whatever the text might also
have answered is set aside (`set_aside`): an open check-in is paused (its answers kept; /checkin carries it
on), an exercise is stopped (no more timed steps), a safety-plan step, a setting or a "can't make it" reason
being typed is no longer waited for.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta

from telegram import Update

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.checkin import rules as checkin_rules
from bot.checkin.rules import read_yes_no
from bot.coping import rules as coping_rules
from bot.coping.callbacks import MENU_DATA
from bot.core.models import Patient, PatientStatus, Priority, SafetyPlan, utcnow
from bot.handlers import alerts, medication, screener
from bot.handlers import safety_plan as plan_handlers
from bot.handlers.base import Context, Turn, turn
from bot.handlers.promise import promise, unshared
from bot.risk import Category, FollowUp, RiskLevel, Screening, cssrs
from bot.risk import escalation as rules
from bot.risk import safety_plan as plan_rules
from bot.risk.callbacks import SAFETY_CHECK, SafetyAnswer
from bot.risk.promise import Promise
from bot.risk.semantic import Verdict
from bot.risk.use import Tier, UseReport, Withdrawal, advice_for
from bot.waiting import waiting_for

log = logging.getLogger(__name__)

# Categories whose imminent reply is the crisis lines for the patient's own life (not harm to others).
OWN_LIFE = (Category.SUICIDE, Category.SELF_HARM, Category.OVERDOSE)


class Reply(enum.Enum):
    NONE = "none"  # nothing said: the caller goes on (a moderate signal is left to it)
    ASKED = "asked"  # a question about the risk: the screener's permission or "are you safe right now?"
    CRISIS = "crisis"  # a high or imminent reply: every other flow was set aside; the text goes nowhere else


async def respond(t: Turn, patient: Patient, screening: Screening, text: str, *, source: str) -> Reply:
    """Answer a risk signal at once: crisis resources for imminent, a kind word for high (with the care team
    told, always: no secret surveillance), a reply of its own for danger at home and for harm to others, or
    a safety question when an imminent signal came softened."""
    now = utcnow()
    level = await rules.record_signal(t.session, patient, screening, source, now, t.runtime.settings)
    if level is RiskLevel.HIGH and only_use(screening):
        # A reported use is tiered by what was used and how: a page, or a flag for the next business day.
        await set_aside(t, patient)
        report = t.runtime.content.risk.use.read(text)
        await use_reported(t, patient, report, source=source, detail=text, offer_exercise=True)
        return Reply.CRISIS
    if level >= RiskLevel.HIGH:
        category = screening.categories[0] if screening.categories else Category.HOPELESS
        raised = await alerts.escalate(t, patient, level, category, source, text)
        await set_aside(t, patient)
        kept = await promise(t, patient, raised.escalation.id)
        if level is RiskLevel.IMMINENT and Category.OVERDOSE in screening.categories:
            await medication.after_overdose(t, patient, raised.escalation.id)  # replace the naloxone
        if level is RiskLevel.IMMINENT:
            if t.update.update_id in t.runtime.answered_without_database:
                # Its crisis reply went out while the database was down; recorded and paged now, not repeated.
                t.urgent = True
            else:
                await _imminent_reply(t, patient, screening.categories, kept)
        elif Category.DANGER in screening.categories:
            await t.reply_urgently("crisis.danger", buttons=_call_buttons(t), promise=kept, ask_call=True)
        elif category in (Category.RELAPSE, Category.USE_PLAN):
            await t.reply_urgently(
                "crisis.high_relapse", buttons=[[(t.text("crisis.try_exercise_button"), MENU_DATA)]]
            )
        else:
            await t.reply_urgently("crisis.high", buttons=plan_handlers.support_rows(t), promise=kept)
        if screening.follow_up is FollowUp.CSSRS:
            await screener.offer(t, patient, cssrs.Trigger.ALERTED, raised.escalation.id)
        return Reply.CRISIS
    if screening.follow_up is FollowUp.CSSRS and await screener.offer(
        t, patient, cssrs.Trigger.AMBIGUOUS, None
    ):
        return Reply.ASKED
    if screening.follow_up is not None:
        await screener.ask_if_safe_now(t, patient, cssrs.SafetyReason.SOFTENED)
        return Reply.ASKED
    return Reply.NONE


async def typed_in_plan(t: Turn, patient: Patient, plan: SafetyPlan, text: str, screening: Screening) -> None:
    """A safety-plan step being typed. A plain yes or no answers a waiting "are you safe right now?" first:
    it is never saved as a step. A plan's warning signs and means are written in crisis words on purpose:
    they are asked about, not paged. If the words still bring a crisis reply (a pattern of signals), the
    step was set aside with everything else and the text is not saved in it."""
    if await typed_safety_answer(t, patient, text):
        return
    if await respond(t, patient, screening.as_question(), text, source="safety_plan") is Reply.CRISIS:
        return
    await plan_handlers.on_typed(t, patient, plan, text)


def only_use(screening: Screening) -> bool:
    """A high signal that is a reported use and nothing else (no suicide question to follow)."""
    return screening.categories == (Category.RELAPSE,) and screening.follow_up is None


async def use_reported(
    t: Turn,
    patient: Patient,
    report: UseReport | None,
    *,
    source: str,
    detail: str | None,
    offer_exercise: bool,
) -> Tier:
    """Tell the care team of a reported use by its tier (a page now, or a next-business-day flag; not known
    what was used counts as high), and the patient what fits what they used (harm reduction)."""
    tier = report.tier if report is not None else Tier.HIGH
    kept = ""
    if tier is Tier.HIGH:
        raised = await alerts.escalate(t, patient, RiskLevel.HIGH, Category.RELAPSE, source, detail)
        t.urgent = True  # this reply, like any crisis reply, goes through the urgent lane
        kept = await promise(t, patient, raised.escalation.id)  # only what the clinic can keep now
    elif await tell_care_team(t.runtime, t.session, patient, FlagKind.USE_REPORTED):
        t.wake_outbox()
    log.info("event=risk.use_reported patient_id=%s source=%s", patient.id, source)
    parts = [t.text(f"use.told_{tier}", promise=kept)]
    parts += [t.text(f"use.advice.{advice}") for advice in advice_for(report or UseReport())]
    buttons = None
    if offer_exercise:
        parts.append(t.text("use.exercise_offer"))
        buttons = [[(t.text("crisis.try_exercise_button"), MENU_DATA)]]
    await t.send("\n\n".join(parts), buttons=buttons)
    return tier


async def answer_withdrawal(t: Turn, patient: Patient, text: str) -> bool:
    """Signs of withdrawal, or a missed or run-out medication dose, get advice of their own (medical care
    and 911; the clinic and medication; the counselor told). True if the text showed one."""
    found = t.runtime.content.risk.use.withdrawal(text)
    if found is None:
        return False
    if found is Withdrawal.MISSED_DOSE and await tell_care_team(
        t.runtime, t.session, patient, FlagKind.DOSE_MISSED
    ):
        t.wake_outbox()
    log.info("event=risk.withdrawal patient_id=%s", patient.id)
    await t.reply(f"use.withdrawal.{found}")
    return True


async def _imminent_reply(
    t: Turn, patient: Patient, categories: tuple[Category, ...], kept: str, *, shared: bool = True
) -> None:
    """Intent to harm someone else gets a reply written for that; danger from someone else right now the
    danger reply (911 first; whether the care team may call, when they are told); a risk to the patient's
    own life the crisis lines; a message with several gets each. `kept`: what the care team will do
    (`promise`), said once, at the end."""
    harm = Category.HARM_OTHERS in categories
    danger = Category.DANGER in categories  # in danger from someone else right now: 911 first
    own_life = not (harm or danger) or any(category in OWN_LIFE for category in categories)
    if danger:
        await t.reply_urgently(
            "crisis.danger",
            buttons=_call_buttons(t) if shared else None,
            promise="" if own_life or harm else kept,
            ask_call=shared,
        )
    if harm:
        # With both replies, the promise is made once, at the end.
        await t.reply_urgently("crisis.harm_others", promise="" if own_life else kept)
    if own_life:
        # Their reason for living, in their own words, when their own life is at risk (not someone else's
        # overdose, which is reported under the same category).
        suicidal = Category.SUICIDE in categories or Category.SELF_HARM in categories
        await t.reply_urgently(
            "crisis.imminent",
            overdose=Category.OVERDOSE in categories,
            plan_contacts=await plan_handlers.crisis_contacts(t, patient),
            reason=await plan_handlers.reason_for_living(t, patient) if suicidal else "",
            promise=kept,
        )


async def respond_unshared(t: Turn, patient: Patient, text: str, why: Promise = Promise.NOT_SHARED) -> bool:
    """A patient who does not share with their care team (stopped, /revoke; or has not agreed yet) still
    gets the whole crisis reply to a high or imminent message, told that their care team was not told and
    why (`why`: nothing is recorded or paged without their consent). True if it answered. Answered once:
    not again if its reply went out while the database was down."""
    screening = t.runtime.content.risk.screen(text).without_question()
    if screening.level < RiskLevel.HIGH:
        return False
    log.info("event=risk.unshared patient_id=%s", patient.id)
    if t.update.update_id in t.runtime.answered_without_database:
        return True
    kept = unshared(t, patient, why)
    categories = screening.categories
    if screening.level is RiskLevel.IMMINENT:
        await _imminent_reply(t, patient, categories, kept, shared=False)
    elif Category.DANGER in categories:
        await t.reply_urgently("crisis.danger", promise=kept, ask_call=False)
    else:
        await t.reply_urgently("crisis.high", promise=kept)
    return True


async def set_aside(t: Turn, patient: Patient) -> None:
    """After a crisis reply, nothing else waits for the patient's words (see the module's docstring)."""
    now = utcnow()
    waiting = t.waiting if t.waiting is not None else await waiting_for(t.session, patient.id, now)
    if waiting.checkin is not None:
        checkin_rules.pause(waiting.checkin)
    if waiting.exercise is not None:
        coping_rules.abandon(waiting.exercise, now)
    if waiting.plan is not None and waiting.plan.editing is not None:
        plan_rules.stop(waiting.plan)
    if waiting.reason is not None:
        waiting.reason.awaiting_reason = False
    if patient.onboarding_step is not None and patient.status is not PatientStatus.ONBOARDING:
        patient.onboarding_step = None  # a setting being typed (in set-up, it says where set-up is)
    log.info(
        "event=risk.set_aside patient_id=%s checkin=%s exercise=%s plan=%s rsvp_reason=%s",
        patient.id,
        waiting.checkin is not None,
        waiting.exercise is not None,
        waiting.plan is not None,
        waiting.reason is not None,
    )


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


async def ask_if_safe(t: Turn, patient: Patient, verdict: Verdict) -> bool:
    """The semantic layer (not the rules) thinks the message may be high or imminent: ask, page nobody. "I
    need help now" then counts as imminent; silence is followed up with a flag. Not asked while the
    patient's last "I'm safe" is recent (SEMANTIC_COOLDOWN_HOURS): False then, and nothing was said."""
    hours = t.runtime.settings.semantic_cooldown_hours
    if hours and await cssrs.said_safe_since(t.session, patient.id, utcnow() - timedelta(hours=hours)):
        log.info("event=risk.semantic_question.cooling_down patient_id=%s", patient.id)
        return False
    log.info(
        "event=risk.semantic_question patient_id=%s risk=%.2f imminent=%.2f",
        patient.id,
        verdict.risk,
        verdict.imminent,
    )
    await screener.ask_if_safe_now(t, patient, cssrs.SafetyReason.MODEL)
    return True


async def ask_semantic_question(t: Turn, patient: Patient, screened: Screening) -> bool:
    """The semantic layer's "are you safe right now?", when only it asked one: put last, after whatever the
    message answered (a check-in question, a tap asked for), for active and aftercare patients alike. False
    if there was none to ask, or it waits for the cool-down."""
    verdict = screened.semantic
    return verdict is not None and screened.semantic_question and await ask_if_safe(t, patient, verdict)


def _call_buttons(t: Turn) -> list[list[tuple[str, str]]]:
    return [
        [(t.text("crisis.call_ok_button"), SAFETY_CHECK.pack(SafetyAnswer("call")))],
        [(t.text("crisis.call_not_ok_button"), SAFETY_CHECK.pack(SafetyAnswer("nocall")))],
    ]


async def offer_exercise(t: Turn) -> None:
    await t.reply("crisis.moderate", buttons=[[(t.text("crisis.try_exercise_button"), MENU_DATA)]])


async def on_safety_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    tapped = SAFETY_CHECK.parse(query.data)
    async with turn(update, context) as t:  # the tap is answered after the commit
        t.clear_buttons()
        patient = t.crisis_patient  # in set-up, active, or in aftercare: the crisis path is open
        if patient is None or tapped is None:
            return
        if tapped.answer in ("call", "nocall"):
            await _may_we_call(t, patient, tapped.answer == "call")
            return
        await answer_safety(t, patient, safe=tapped.answer == "safe")


async def answer_safety(t: Turn, patient: Patient, *, safe: bool) -> None:
    """An answer to "are you safe right now?" (a button, or a typed yes or no)."""
    cssrs.safety_answered(t.session, patient.id, safe)
    if safe:
        log.info("event=risk.safety_check.safe patient_id=%s", patient.id)
        await t.reply("crisis.safe_reply")
        return
    screening = Screening(RiskLevel.IMMINENT, (Category.SUICIDE,), (), FollowUp.CSSRS)
    await respond(t, patient, screening, "", source="safety_check")


async def typed_safety_answer(t: Turn, patient: Patient, text: str) -> bool:
    """A plain yes or no typed while "are you safe right now?" waits for an answer (and nothing else waits
    for the text) answers it. True if it did."""
    said = read_yes_no(text)
    if said is None:
        return False
    within = t.runtime.settings.cssrs_unanswered_minutes
    if await cssrs.awaiting_safety_answer(t.session, patient.id, utcnow(), timedelta(minutes=within)) is None:
        return False
    await answer_safety(t, patient, safe=said)
    return True


async def _may_we_call(t: Turn, patient: Patient, ok: bool) -> None:
    """Danger at home: whether the care team may call. A "no" reaches the counselors first (urgent lane): a
    call at the wrong moment can put the patient in more danger."""
    kind = FlagKind.SAFE_TO_CALL if ok else FlagKind.NOT_SAFE_TO_CALL
    priority = Priority.NORMAL if ok else Priority.URGENT
    if await tell_care_team(t.runtime, t.session, patient, kind, priority=priority):
        t.wake_outbox()
    log.info("event=risk.call_answer patient_id=%s", patient.id)
    await t.reply("crisis.call_ok_reply" if ok else "crisis.call_not_ok_reply")
