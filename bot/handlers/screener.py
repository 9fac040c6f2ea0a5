"""The C-SSRS screener over Telegram: one question at a time with Yes/No buttons (typing yes or no works too).

The rules and Columbia's triage are in `bot.risk.cssrs`. A positive screen raises or joins an escalation and
pages at once when it is urgent; a negative one never closes an escalation that is already open.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.checkin.rules import read_yes_no
from bot.core.models import Patient, ScreenStatus, SuicideScreen, utcnow
from bot.handlers import alerts
from bot.handlers import safety_plan as plan_handlers
from bot.handlers.base import Turn
from bot.handlers.guards import patient_button
from bot.outbox.markup import Rows
from bot.risk import RiskLevel, cssrs
from bot.risk.callbacks import SCREENER, ScreenerAnswer

log = logging.getLogger(__name__)


async def offer(t: Turn, patient: Patient, trigger: cssrs.Trigger, escalation_id: int | None) -> bool:
    """Start the screener after a suicide-adjacent message, unless one is under way (then its question is
    asked again, and it is linked to this escalation) or one was finished recently. Returns whether a
    screener is now under way."""
    now = utcnow()
    current = await cssrs.open_screen(t.session, patient.id)
    if current is not None and current.step is not None:
        if escalation_id is not None and current.escalation_id is None:
            current.escalation_id = escalation_id
        await _ask(t, current, cssrs.Question(current.step))
        return True
    recent = now - timedelta(hours=t.runtime.settings.cssrs_repeat_hours)
    if await cssrs.finished_since(t.session, patient.id, recent):
        return False
    screen = await cssrs.start(t.session, patient.id, trigger, escalation_id, now)
    log.info("event=cssrs.started patient_id=%s screen_id=%s trigger=%s", patient.id, screen.id, trigger)
    await _ask(t, screen, cssrs.Question.WISH_DEAD, intro=f"cssrs.intro_{trigger}")
    return True


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


@patient_button(SCREENER)
async def on_button(t: Turn, patient: Patient, button: ScreenerAnswer) -> None:
    screen = await t.session.get(SuicideScreen, button.screen_id, with_for_update=True)
    question = button.question
    if screen is None or screen.patient_id != patient.id:
        log.warning("event=cssrs.foreign_button patient_id=%s", patient.id)
        t.answer(t.text("cssrs.stale"))
        t.clear_buttons()
        return
    if screen.status is ScreenStatus.COMPLETE or screen.step != question.value:
        t.answer(t.text("cssrs.stale"))
        t.clear_buttons()
        return
    t.clear_buttons()
    await _answered(t, patient, screen, question, button.yes)


async def on_typed(t: Turn, patient: Patient, screen: SuicideScreen, text: str) -> None:
    """A typed yes or no answers the open question; anything else asks it again."""
    assert screen.step is not None
    question = cssrs.Question(screen.step)
    said = read_yes_no(text)
    if said is None:
        await t.reply("cssrs.use_buttons")
        await _ask(t, screen, question)
        return
    await _answered(t, patient, screen, question, said)


async def _answered(
    t: Turn, patient: Patient, screen: SuicideScreen, question: cssrs.Question, yes: bool
) -> None:
    following = cssrs.answer(screen, question, yes, utcnow())
    log.info("event=cssrs.answered patient_id=%s screen_id=%s question=%s", patient.id, screen.id, question)
    if following is not None:
        await _ask(t, screen, following)
        return
    risk = cssrs.ColumbiaRisk(screen.result or cssrs.ColumbiaRisk.NONE)
    log.info("event=cssrs.completed patient_id=%s screen_id=%s result=%s", patient.id, screen.id, risk)
    level = cssrs.LEVELS[risk]
    if level >= RiskLevel.HIGH:
        category = await cssrs.category_of(t.session, screen)
        raised = await alerts.escalate(t, patient, level, category, "cssrs", None)
        screen.escalation_id = raised.escalation.id
    if level is RiskLevel.IMMINENT:
        await t.reply("cssrs.result_urgent", plan_contacts=await plan_handlers.crisis_contacts(t, patient))
    elif level is RiskLevel.HIGH:
        await t.reply("cssrs.result_concern", buttons=plan_handlers.support_rows(t))
    elif screen.escalation_id is not None:
        await t.reply("cssrs.result_clear_open")
    else:
        await t.reply("cssrs.result_clear")
