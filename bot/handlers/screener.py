"""The C-SSRS screener over Telegram: permission first ("Can I ask you a few short questions?", OK / Not now),
then one question at a time with Yes/No buttons (typing yes or no works too).

The rules and Columbia's triage are in `bot.risk.cssrs`. A positive screen raises or joins an escalation and
pages at once when it is urgent; a low one is a referral (a care-team flag); a negative one never closes an
escalation that is already open. "Not now" is not "no": the bot asks "are you safe right now?" instead and
tells the care team the questions were declined. This module also asks that plain safety question for the
crisis replies (`ask_if_safe_now`), so an unanswered one can be followed up wherever it came from.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.checkin.rules import read_yes_no
from bot.core.models import Patient, PatientStatus, ScreenStatus, SuicideScreen, utcnow
from bot.handlers import alerts
from bot.handlers import safety_plan as plan_handlers
from bot.handlers.base import Turn
from bot.handlers.guards import patient_button
from bot.handlers.promise import promise
from bot.outbox.markup import Rows
from bot.risk import RiskLevel, cssrs
from bot.risk.callbacks import SAFETY_CHECK, SCREENER, SafetyAnswer, ScreenerAnswer

log = logging.getLogger(__name__)

SAFETY_BUTTONS = (
    ("crisis.safe_button", SAFETY_CHECK.pack(SafetyAnswer("safe"))),
    ("crisis.not_safe_button", SAFETY_CHECK.pack(SafetyAnswer("help"))),
)
_OK = {"ok", "okay", "k", "sure", "fine", "go ahead", "vale", "bueno", "está bien", "esta bien", "claro"}
_NOT_NOW = {"not now", "later", "no thanks", "no thank you", "ahora no", "después", "despues", "luego"}


def read_permission(text: str) -> bool | None:
    """A typed answer to "Can I ask you a few short questions?": True (OK), False (not now), None."""
    said = read_yes_no(text)
    if said is not None:
        return said
    words = " ".join(text.strip().lower().rstrip(".!").split())
    return True if words in _OK else False if words in _NOT_NOW else None


async def offer(
    t: Turn, patient: Patient, trigger: cssrs.Trigger, escalation_id: int | None, *, always: bool = False
) -> bool:
    """Start the screener after a suicide-adjacent message, unless one is under way (then its question is
    asked again, and it is linked to this escalation) or one was finished recently (`always`: even then, as
    for a questionnaire's safety item). Returns whether a screener is now under way."""
    now = utcnow()
    current = await cssrs.open_screen(t.session, patient.id)
    if current is not None and current.step is not None:
        if escalation_id is not None and current.escalation_id is None:
            current.escalation_id = escalation_id
        await _ask_current(t, current)
        return True
    recent = now - timedelta(hours=t.runtime.settings.cssrs_repeat_hours)
    if not always and await cssrs.finished_since(t.session, patient.id, recent):
        return False
    screen = await cssrs.start(t.session, patient.id, trigger, escalation_id, now)
    _drop_typing(patient)
    log.info("event=cssrs.started patient_id=%s screen_id=%s trigger=%s", patient.id, screen.id, trigger)
    await _ask_permission(t, screen)
    return True


def _drop_typing(patient: Patient) -> None:
    """A safety question drops whatever the patient was asked to type after a button (a medicine's name, a
    reply to the team, a setting), so that the answer is not taken for it. Onboarding keeps its step."""
    if patient.onboarding_step is not None and patient.status is not PatientStatus.ONBOARDING:
        log.info("event=typing.dropped patient_id=%s", patient.id)
        patient.onboarding_step = None


async def _ask_current(t: Turn, screen: SuicideScreen) -> None:
    assert screen.step is not None
    if screen.step == cssrs.PERMISSION:
        await _ask_permission(t, screen)
    else:
        await _ask(t, screen, cssrs.Question(screen.step))


async def _ask_permission(t: Turn, screen: SuicideScreen) -> None:
    """Its own message and its own buttons: an answer to it is never an answer to a question."""
    buttons = [
        [
            (t.text("cssrs.ok_button"), SCREENER.pack(ScreenerAnswer(screen.id, cssrs.PERMISSION, True))),
            (
                t.text("cssrs.not_now_button"),
                SCREENER.pack(ScreenerAnswer(screen.id, cssrs.PERMISSION, False)),
            ),
        ]
    ]
    await t.send(t.text(f"cssrs.intro_{screen.trigger}"), buttons=buttons)


def _buttons(t: Turn, screen: SuicideScreen, question: cssrs.Question) -> Rows:
    return [
        [
            (t.text("cssrs.yes_button"), SCREENER.pack(ScreenerAnswer(screen.id, question, True))),
            (t.text("cssrs.no_button"), SCREENER.pack(ScreenerAnswer(screen.id, question, False))),
        ]
    ]


async def _ask(t: Turn, screen: SuicideScreen, question: cssrs.Question, *, intro: str | None = None) -> None:
    text = t.text(f"cssrs.questions.{question}")
    if intro:
        text = f"{t.text(intro)}\n\n{text}"
    await t.send(text, buttons=_buttons(t, screen, question))


@patient_button(SCREENER, crisis_path=True)
async def on_button(t: Turn, patient: Patient, button: ScreenerAnswer) -> None:
    screen = await t.session.get(SuicideScreen, button.screen_id, with_for_update=True)
    question = button.question
    step = question.value if isinstance(question, cssrs.Question) else question
    if screen is None or screen.patient_id != patient.id:
        log.warning("event=cssrs.foreign_button patient_id=%s", patient.id)
        t.answer(t.text("cssrs.stale"))
        t.clear_buttons()
        return
    if screen.status not in (ScreenStatus.OPEN, ScreenStatus.UNANSWERED) or screen.step != step:
        t.answer(t.text("cssrs.stale"))
        t.clear_buttons()
        return
    t.clear_buttons()
    if isinstance(question, cssrs.Question):
        await _answered(t, patient, screen, question, button.yes)
    else:
        await _permission(t, patient, screen, button.yes)


async def on_typed(t: Turn, patient: Patient, screen: SuicideScreen, text: str) -> None:
    """A typed yes or no answers the open question (OK or "not now" the permission); anything else asks it
    again."""
    assert screen.step is not None
    if screen.step == cssrs.PERMISSION:
        agreed = read_permission(text)
        if agreed is None:
            await t.reply("cssrs.use_permission_buttons")
            await _ask_permission(t, screen)
            return
        await _permission(t, patient, screen, agreed)
        return
    question = cssrs.Question(screen.step)
    said = read_yes_no(text)
    if said is None:
        await t.reply("cssrs.use_buttons")
        await _ask(t, screen, question)
        return
    await _answered(t, patient, screen, question, said)


async def _permission(t: Turn, patient: Patient, screen: SuicideScreen, agreed: bool) -> None:
    now = utcnow()
    if agreed:
        period = await cssrs.period_for(t.session, patient.id, now)
        first = cssrs.agree(screen, period, now)
        log.info("event=cssrs.agreed patient_id=%s screen_id=%s period=%s", patient.id, screen.id, period)
        await _ask(t, screen, first, intro=f"cssrs.begin_{period}")
        return
    cssrs.decline(screen, now)
    log.info("event=cssrs.declined patient_id=%s screen_id=%s", patient.id, screen.id)
    if await tell_care_team(t.runtime, t.session, patient, FlagKind.SCREENER_DECLINED):
        t.wake_outbox()
    await t.reply("cssrs.declined")
    await ask_if_safe_now(t, patient, cssrs.SafetyReason.DECLINED, cssrs.Trigger(screen.trigger))


async def ask_if_safe_now(
    t: Turn, patient: Patient, reason: cssrs.SafetyReason, trigger: cssrs.Trigger | None = None
) -> None:
    """ "Are you safe right now?" with the safe / need-help buttons, recorded so that silence is followed up
    (`bot.risk.jobs.follow_up_safety_checks`)."""
    cssrs.ask_safety(t.session, patient.id, reason, trigger)
    _drop_typing(patient)
    log.info("event=risk.safety_check patient_id=%s", patient.id)
    await t.reply("crisis.safety_check", buttons=[[(t.text(label), data) for label, data in SAFETY_BUTTONS]])


async def _answered(
    t: Turn, patient: Patient, screen: SuicideScreen, question: cssrs.Question, yes: bool
) -> None:
    following = cssrs.answer(screen, question, yes, utcnow())
    log.info("event=cssrs.answered patient_id=%s screen_id=%s question=%s", patient.id, screen.id, question)
    if following is not None:
        await _ask(t, screen, following)
        return
    risk = cssrs.ColumbiaRisk(screen.result or cssrs.ColumbiaRisk.NONE)
    log.info("event=cssrs.completed patient_id=%s screen_id=%s", patient.id, screen.id)
    level = cssrs.LEVELS[risk]
    if level >= RiskLevel.HIGH:
        category = await cssrs.category_of(t.session, screen)
        raised = await alerts.escalate(t, patient, level, category, "cssrs", None)
        screen.escalation_id = raised.escalation.id
    # A result that pages is a crisis reply: through the urgent lane, like the message's own (retried on
    # timeouts and 5xx, never lost to a crash after the commit: the tap that asked for it is stale by then).
    if level is RiskLevel.IMMINENT:
        await t.reply_urgently(
            "cssrs.result_urgent",
            plan_contacts=await plan_handlers.crisis_contacts(t, patient),
            reason=await plan_handlers.reason_for_living(t, patient),
            promise=await promise(t, patient, screen.escalation_id),
        )
    elif level is RiskLevel.HIGH:
        await t.reply_urgently(
            "cssrs.result_concern",
            buttons=plan_handlers.support_rows(t),
            promise=await promise(t, patient, screen.escalation_id),
        )
    elif (linked := await cssrs.linked_open(t.session, screen)) is not None:
        await t.reply("cssrs.result_clear_open", promise=await promise(t, patient, linked.id))
    elif risk is cssrs.REFERRAL:
        # Columbia's low risk: a referral for the counselor to take up by the next business day, not a page.
        if await tell_care_team(t.runtime, t.session, patient, FlagKind.SCREENER_REFERRAL):
            t.wake_outbox()
        await t.reply("cssrs.result_referral")
    else:
        await t.reply("cssrs.result_clear")
