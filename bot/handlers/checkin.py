"""The daily check-in over Telegram: /checkin, its buttons, typed answers. Rules are in
bot/checkin/rules.py."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.checkin import rules
from bot.checkin.callbacks import CHECKIN, TRIGGER_FIELD, CheckinButton
from bot.checkin.prompts import question, question_buttons
from bot.checkin.rules import Question
from bot.coping import callbacks as coping_buttons
from bot.coping import rules as coping
from bot.core.models import CheckIn, Patient, utcnow
from bot.handlers import coping as coping_handlers
from bot.handlers import crisis
from bot.handlers.base import Turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import patient_button, patient_only
from bot.handlers.promise import promise
from bot.risk import Category, RiskLevel, Screening
from bot.risk import escalation as risk_rules
from bot.risk.use import CHOICES, Substance, UseReport

log = logging.getLogger(__name__)


async def _ask(t: Turn, checkin: CheckIn, intro: str | None = None) -> None:
    text, buttons = question(t.runtime, t.language, checkin, intro=intro)
    await t.send(text, buttons=buttons)


@patient_only
async def start_command(t: Turn, patient: Patient) -> None:
    """/checkin: start one now, or carry on with the one already open."""
    expiry = timedelta(hours=t.runtime.settings.checkin_expiry_hours)
    checkin, new = await rules.begin_on_demand(t.session, patient, utcnow(), expiry=expiry)
    log.info(
        "event=checkin.%s patient_id=%s checkin_id=%s",
        "started" if new else "resumed",
        patient.id,
        checkin.id,
    )
    await _ask(t, checkin, "checkin.intro_on_demand" if new else "checkin.resumed")


@patient_button(CHECKIN)
async def on_button(t: Turn, patient: Patient, button: CheckinButton) -> None:
    field, value = button.field, button.value
    checkin = await t.session.get(CheckIn, button.checkin_id, with_for_update=True)
    if checkin is None or checkin.patient_id != patient.id:
        answer_expired_button(t)
        return
    try:
        if field == TRIGGER_FIELD and value != "done":
            rules.toggle_trigger(checkin, value, utcnow())
            t.set_buttons(question_buttons(t.runtime, t.language, checkin))
            return
        answered = Question.TRIGGERS if field == TRIGGER_FIELD else Question(field)
        following = _apply_button(checkin, answered, value)
    except rules.Closed:
        t.answer(t.text("checkin.closed"))
        return
    except (rules.Invalid, ValueError):
        answer_expired_button(t)  # a button from an earlier question, or forged data
        return
    t.clear_buttons()
    await _after_answer(t, patient, checkin, answered, following)


def _apply_button(checkin: CheckIn, answered: Question, value: str) -> Question | None:
    now = utcnow()
    if value == "skip":
        return rules.skip(checkin, answered, now)
    if answered is Question.TRIGGERS:
        return rules.confirm_triggers(checkin, now)
    if answered in (Question.CRAVING, Question.MOOD):
        return rules.answer(checkin, answered, int(value), now)
    if answered is Question.USE:
        if value not in ("yes", "no"):
            raise rules.Invalid("yes or no")
        return rules.answer(checkin, answered, value == "yes", now)
    if answered is Question.SLEEP:
        return rules.answer(checkin, answered, value, now)
    if answered is Question.USE_WHAT:
        if value not in CHOICES:
            raise rules.Invalid("unknown substance")
        return rules.answer_use(checkin, answered, UseReport(frozenset({Substance(value)})), now)
    if answered is Question.USE_HOW:
        if value not in rules.USE_HOW:
            raise rules.Invalid("unknown answer")
        return rules.answer_use(checkin, answered, _how(checkin, value), now)
    raise rules.Invalid("this question takes typed text")


def _how(checkin: CheckIn, value: str) -> UseReport:
    """The report so far, with "alone" or "injected" added (or neither)."""
    report = rules.use_report(checkin) or UseReport()
    return UseReport(report.substances, alone=value == "alone", injected=value == "injected")


async def on_typed(t: Turn, patient: Patient, checkin: CheckIn, text: str) -> None:
    """Text typed while a check-in question is open: an answer when it can be one, else a gentle re-ask."""
    step = Question(checkin.step or Question.CRAVING)
    now = utcnow()
    if step in (Question.CRAVING, Question.MOOD):
        low, high = rules.CRAVING_RANGE if step is Question.CRAVING else rules.MOOD_RANGE
        reading = rules.read_number(text, low, high)
        if reading.value is None:
            await t.reply(f"checkin.retry.{step}{'_range' if reading.out_of_range else ''}")
            return
        following = rules.answer(checkin, step, reading.value, now)
    elif step is Question.USE:
        said = rules.read_yes_no(text)
        if said is None:
            await t.reply("checkin.retry.buttons")
            return
        following = rules.answer(checkin, step, said, now)
    elif step in rules.USE_QUESTIONS:  # read for what was used and how: that decides who is told, and when
        report = typed_use(t, text, how=step is Question.USE_HOW, so_far=rules.use_report(checkin))
        if report is None:
            await t.reply("checkin.retry.buttons")
            return
        words = text if step is Question.USE_WHAT else None
        following = rules.answer_use(checkin, step, report, now, words=words)
    elif step in rules.TEXT_QUESTIONS:
        following = rules.answer(checkin, step, text, now)
    else:
        await t.reply("checkin.retry.buttons")
        return
    await _after_answer(t, patient, checkin, step, following)


async def _after_answer(
    t: Turn, patient: Patient, checkin: CheckIn, answered: Question, following: Question | None
) -> None:
    log.info(
        "event=checkin.answered patient_id=%s checkin_id=%s question=%s", patient.id, checkin.id, answered
    )
    if rules.use_tier_settled(checkin, answered, following):
        await _tell_about_use(t, patient, checkin)
    high_craving = t.runtime.settings.high_craving
    if answered is Question.CRAVING and checkin.craving is not None and checkin.craving >= high_craving:
        counted = await crisis.structured_signal(t, patient, RiskLevel.MODERATE, Category.CRAVING, "checkin")
        if counted >= RiskLevel.HIGH:  # several strong cravings within the pattern window: no secret alerts
            await t.reply("crisis.pattern_told", promise=await promise(t, patient))
        if checkin.craving >= coping.STRONG_CRAVING:  # help at once, not after the rest of the check-in
            await coping_handlers.offer_at_strong_craving(t, patient)
    if following is not None:
        await _ask(t, checkin)
        return
    log.info("event=checkin.completed patient_id=%s checkin_id=%s", patient.id, checkin.id)
    await _finish(t, patient, checkin)


async def _tell_about_use(t: Turn, patient: Patient, checkin: CheckIn) -> None:
    """The patient said what they used (or skipped it). Nothing is sent at "yes" alone: a page waits for the
    answer (or for `USE_ANSWER_WAIT`, see bot.checkin.jobs)."""
    await report_use(t, patient, rules.use_report(checkin), words=checkin.use_what, source="checkin")


def typed_use(t: Turn, text: str, *, how: bool, so_far: UseReport | None) -> UseReport | None:
    """Typed words read as the answer to "What did you use?" or, with `how`, to "Were you alone, or did you
    inject?" (added to what was used `so_far`); None if they answer neither (ask for a tap). Shared with the
    aftercare check-ins."""
    read = t.runtime.content.risk.use.read(text)
    if not how:
        return read
    if not (read.alone or read.injected) and rules.read_yes_no(text) is not False:
        return None
    return UseReport((so_far or UseReport()).substances, alone=read.alone, injected=read.injected)


async def report_use(
    t: Turn, patient: Patient, report: UseReport | None, *, words: str | None, source: str
) -> None:
    """A check-in's reported use, settled (what was used said, or skipped): kept as a high relapse signal,
    the care team told by its tier (opioids, fentanyl, unknown, alone or injecting: a page now; else a flag),
    and the patient given the harm-reduction advice that fits. Shared with the aftercare check-ins."""
    screening = Screening(RiskLevel.HIGH, (Category.RELAPSE,), ())
    await risk_rules.record_signal(t.session, patient, screening, source, utcnow(), t.runtime.settings)
    # What was used, in their words (if typed): behind a page's "Show details", never in the alert itself.
    await crisis.use_reported(t, patient, report, source=source, detail=words, offer_exercise=False)


async def _finish(t: Turn, patient: Patient, checkin: CheckIn) -> None:
    days = await rules.streak(t.session, patient.id, checkin.local_day)
    thanks = t.text("checkin.thanks")
    follow = t.text("checkin.streak", days=days) if days >= 2 else t.text("checkin.first_in_a_while")
    await t.send(f"{thanks} {follow}")
    if checkin.used:
        await t.reply("checkin.after_use")
    craving = checkin.craving
    if craving is not None and t.runtime.settings.high_craving <= craving < coping.STRONG_CRAVING:
        await offer_module(t, patient, craving)  # (8 or more had its offer at the craving question)


async def offer_module(t: Turn, patient: Patient, craving: int | None) -> None:
    """Offer at once the coping module that has helped this patient most (urge surfing if none yet), among
    those that suit this craving."""
    module, helped = await coping_handlers.module_for(t, patient, craving)
    if module is None:
        return
    log.info("event=coping.offered patient_id=%s module=%s", patient.id, module.id)
    await t.reply(
        "checkin.high_craving_helped" if helped else "checkin.high_craving",
        title=module.title,
        minutes=module.minutes,
        buttons=[
            [
                (
                    t.text("checkin.start_button", title=module.title),
                    coping_buttons.MODULE.pack(coping_buttons.ModuleButton(module.id)),
                )
            ],
            [(t.text("checkin.other_exercises_button"), coping_buttons.MENU_DATA)],
        ],
    )
