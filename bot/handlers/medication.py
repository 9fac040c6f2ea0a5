"""/meds: medication reminders and naloxone, for the patient (buttons, step by step) and for the counselor
(`/meds ALIAS ...`); the daily dose question's buttons; refill or shot reminders; the naloxone question. Rules
are in bot/medcare/."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from telegram import Update

from bot.careteam.flags import FlagKind
from bot.careteam.notices import tell_care_team
from bot.core import audit
from bot.core.models import (
    Counselor,
    DoseDay,
    DoseStatus,
    MedicationKind,
    MedicationPlan,
    Patient,
    Priority,
    utcnow,
)
from bot.enrollment.onboarding import format_clock, parse_clock
from bot.handlers import care_messages
from bot.handlers.base import Context, Turn, turn
from bot.handlers.consent_update import ask_to_update
from bot.handlers.fallback import answer_expired_button, answer_not_for_role
from bot.handlers.guards import patient_button
from bot.medcare import medication as rules
from bot.medcare import naloxone
from bot.medcare.callbacks import (
    DOSE,
    MED,
    NALOXONE,
    NALOXONE_ANSWERS,
    PLAN_SET_KEY,
    PLAN_SET_KIND,
    SUPPLY,
    TYPING,
    TYPING_MED,
    TYPING_UNTIMED,
    DoseButton,
    MedButton,
    NaloxoneButton,
    PlanSetKey,
    SupplyButton,
    TypingMed,
    TypingReply,
)
from bot.medcare.prompts import day_text, medicine, naloxone_replacement
from bot.outbox import store as outbox
from bot.outbox.markup import Button, Rows
from bot.risk import promise
from bot.risk.paging import local_time
from bot.workspace import rules as workspace

log = logging.getLogger(__name__)

SUMMARY_DAYS = 14  # the counselor's view of answers to the dose question

# The words a counselor may use for each medicine in `/meds ALIAS MEDICINE ...`
COUNSELOR_WORDS = {
    "buprenorphine": MedicationKind.BUPRENORPHINE,
    "suboxone": MedicationKind.BUPRENORPHINE,
    "methadone": MedicationKind.METHADONE,
    "naltrexone": MedicationKind.NALTREXONE_DAILY,
    "naltrexone-pills": MedicationKind.NALTREXONE_DAILY,
    "naltrexone-shot": MedicationKind.NALTREXONE_MONTHLY,
    "vivitrol": MedicationKind.NALTREXONE_MONTHLY,
    "other": MedicationKind.OTHER,
}
STOP_WORDS = ("off", "stop")
SUPPLY_WORDS = ("refill", "shot")


def _med(step: str, value: str) -> str:
    return MED.pack(MedButton(step, value))


def _clock_value(clock: time) -> str:
    return clock.strftime("%H%M")


def _read_clock_value(value: str) -> time | None:
    if len(value) != 4 or not value.isdigit():
        return None
    return parse_clock(f"{value[:2]}:{value[2:]}")


# ---- /meds -------------------------------------------------------------------------------------------------


async def meds_command(update: Update, context: Context) -> None:
    """A patient's medication reminders and naloxone; for a counselor, `/meds ALIAS ...`."""
    async with turn(update, context) as t:
        person = t.person
        if isinstance(person, Counselor):
            await _counselor(t, person)
            return
        patient = t.active_patient
        if patient is None:
            if isinstance(person, Patient):
                await t.reply(f"help.patient_{person.status.value}")
            else:
                await answer_not_for_role(t)
            return
        if await ask_to_update(t, patient):
            return
        patient.onboarding_step = None  # a half-typed answer from before is dropped
        await _menu(t, patient)


async def _menu(t: Turn, patient: Patient) -> None:
    plan = await rules.plan_of(t.session, patient.id)
    naloxone_row = [(t.text("meds.naloxone_button"), _med("menu", "naloxone"))]
    if plan is None or not plan.active:
        await t.reply("meds.intro", buttons=[*_kind_rows(t), naloxone_row])
        return
    await t.send(
        t.text("meds.current", **_plan_values(t, plan)),
        buttons=[
            [(t.text("meds.change_button"), _med("menu", "change"))],
            [(t.text("meds.stop_button"), _med("menu", "stop"))],
            naloxone_row,
        ],
    )


def _plan_values(t: Turn, plan: MedicationPlan) -> dict[str, object]:
    return {
        "medicine": medicine(t.runtime, plan, t.language),
        "daily": rules.is_daily(plan.kind),
        "time": format_clock(plan.dose_time) if plan.dose_time else "",
        "day": day_text(t.runtime, plan.next_supply, t.language) if plan.next_supply else "",
        "private": not plan.show_name,
    }


def _kind_rows(t: Turn) -> list[list[Button]]:
    rows = [
        [(t.text(f"meds.kind_buttons.{kind.value}"), _med("kind", kind.value))] for kind in MedicationKind
    ]
    return [*rows, [(t.text("meds.no_thanks_button"), _med("menu", "none"))]]


def _time_rows(t: Turn) -> Rows:
    times = [(format_clock(c), _med("time", _clock_value(c))) for c in rules.COMMON_DOSE_TIMES]
    return [times[:3], times[3:], [(t.text("meds.other_time_button"), _med("time", "other"))]]


def _days_rows(t: Turn, step: str, choices: tuple[int, ...], *, skip: bool) -> Rows:
    days = [(t.text("meds.in_days", days=n), _med(step, str(n))) for n in choices]
    last: list[Button] = [(t.text("meds.other_day_button"), _med(step, "other"))]
    if skip:
        last.append((t.text("meds.not_sure_button"), _med(step, "skip")))
    return [days[:2], days[2:], last]


async def _ask_next(t: Turn, patient: Patient, plan: MedicationPlan, step: str) -> None:
    """Ask the set-up question after `step` (what was just answered)."""
    if step == "kind":
        if rules.is_daily(plan.kind):
            await t.reply("meds.ask_time", buttons=_time_rows(t))
        else:
            await t.reply("meds.ask_shot", buttons=_days_rows(t, "shot", rules.SHOT_CHOICES, skip=False))
    elif step in ("time", "shot"):
        await t.reply(
            "meds.ask_show",
            buttons=[
                [(t.text("meds.private_button"), _med("show", "no"))],
                [(t.text("meds.show_button"), _med("show", "yes"))],
            ],
            medicine=medicine(t.runtime, plan, t.language),
        )
    elif step == "show" and rules.is_daily(plan.kind):
        await t.reply("meds.ask_supply", buttons=_days_rows(t, "supply", rules.SUPPLY_CHOICES, skip=True))
    else:
        log.info("event=medication.set_up patient_id=%s plan_id=%s", patient.id, plan.id)
        await t.send(t.text("meds.done", **_plan_values(t, plan)))


@patient_button(MED)
async def on_button(t: Turn, patient: Patient, button: MedButton) -> None:
    step, value = button.step, button.value
    patient.onboarding_step = None
    if step == "menu":
        await _on_menu(t, patient, value)
        return
    if step == "kind":
        try:
            kind = MedicationKind(value)
        except ValueError:
            answer_expired_button(t)
            return
        t.clear_buttons()
        if kind is MedicationKind.OTHER:
            patient.onboarding_step = TYPING_MED.pack(TypingMed("name", utcnow()))
            await t.reply("meds.ask_name")
            return
        chosen = await rules.choose(t.session, patient, kind, by=rules.SetBy.PATIENT, actor_id=patient.id)
        await _ask_next(t, patient, chosen, "kind")
        return
    plan = await rules.plan_of(t.session, patient.id)
    if plan is None:
        answer_expired_button(t)
        return
    if value == "other" and step in ("time", "shot", "supply"):
        patient.onboarding_step = TYPING_MED.pack(TypingMed(step, utcnow()))
        await t.reply("meds.type_time" if step == "time" else "meds.type_day")
        return
    try:
        _apply(t, patient, plan, step, value)
    except (rules.Invalid, ValueError):
        answer_expired_button(t)
        return
    t.clear_buttons()
    await _ask_next(t, patient, plan, step)


def _apply(t: Turn, patient: Patient, plan: MedicationPlan, step: str, value: str) -> None:
    today = rules.local_today(patient, utcnow())
    if step == "time":
        clock = _read_clock_value(value)
        if clock is None:
            raise rules.Invalid("not a time")
        rules.set_dose_time(plan, clock)
    elif step in ("shot", "supply"):
        if value == "skip" and step == "supply":
            rules.set_next_supply(plan, None)
        else:
            rules.set_next_supply(plan, today + timedelta(days=int(value)))
    elif step == "show":
        plan.show_name = value == "yes"
    else:
        raise rules.Invalid("unknown step")


async def _on_menu(t: Turn, patient: Patient, value: str) -> None:
    t.clear_buttons()
    if value == "naloxone":
        await ask_naloxone(t)
    elif value == "change":
        await t.reply("meds.intro", buttons=_kind_rows(t))
    elif value == "none":
        await t.reply("meds.no_thanks")
    else:
        plan = await rules.plan_of(t.session, patient.id)
        if plan is not None and rules.stop(t.session, plan, by=rules.SetBy.PATIENT, actor_id=patient.id):
            log.info("event=medication.stopped patient_id=%s by=patient", patient.id)
        await t.reply("meds.stopped")


async def on_typed(t: Turn, patient: Patient, typing: TypingMed, text: str) -> None:
    """A set-up answer the patient chose to type: the medicine's name, a time, a day."""
    field = typing.field
    if field == "name":
        name = text.strip()
        if not name:
            await t.reply("meds.ask_name")
            return
        patient.onboarding_step = None
        chosen = await rules.choose(
            t.session, patient, MedicationKind.OTHER, by=rules.SetBy.PATIENT, actor_id=patient.id, name=name
        )
        await _ask_next(t, patient, chosen, "kind")
        return
    plan = await rules.plan_of(t.session, patient.id)
    if plan is None:
        patient.onboarding_step = None
        await _menu(t, patient)
        return
    if field == "time":
        clock = parse_clock(text)
        if clock is None or not rules.is_daily(plan.kind):
            await t.reply("meds.type_time")
            return
        rules.set_dose_time(plan, clock)
    else:
        day = rules.parse_day(text, rules.local_today(patient, utcnow()), patient.language)
        if day is None:
            await t.reply("meds.type_day")
            return
        rules.set_next_supply(plan, day)
    patient.onboarding_step = None
    await _ask_next(t, patient, plan, field)


# ---- the dose question, refill and shot reminders ----------------------------------------------------------


@patient_button(DOSE)
async def on_dose_button(t: Turn, patient: Patient, button: DoseButton) -> None:
    dose = await t.session.get(DoseDay, button.dose_id, with_for_update=True)
    if dose is None or dose.patient_id != patient.id:
        answer_expired_button(t)
        return
    plan = await rules.plan_of(t.session, patient.id)
    now = utcnow()
    before = await rules.missed_run_before(t.session, patient.id, dose.local_day)
    try:
        answered = rules.answer(dose, patient.id, button.answer, now, before)
    except rules.Closed:
        t.answer(t.text("meds.dose.closed"))
        return
    t.clear_buttons()
    log.info("event=dose.answered patient_id=%s dose_id=%s", patient.id, dose.id)
    if answered.tell:
        kind = FlagKind.MEDICINE_RAN_OUT if answered.status is DoseStatus.RAN_OUT else FlagKind.DOSES_MISSED
        if await tell_care_team(t.runtime, t.session, patient, kind):
            t.wake_outbox()
    medicine_kind = plan.kind if plan is not None else MedicationKind.OTHER
    await t.reply(
        f"meds.dose.answers.{answered.status.value}",
        told=answered.tell,
        agonist=medicine_kind in rules.AGONISTS,
        naltrexone=medicine_kind in rules.NALTREXONE,
        when=_when_open(t, patient, now),
    )


def _when_open(t: Turn, patient: Patient, now: datetime) -> str:
    """Nothing in office hours (the clinic can help today); else when it next opens, in the patient's words
    and time zone ("tomorrow at 8:00 AM"): "Ran out" then says to call at that time, or the after-hours
    number before it."""
    kept = promise.by_the_hour(t.runtime.settings, now)
    if kept.opens is None:
        return ""
    return promise.when(t.runtime, kept.opens, patient.timezone, t.language, now)


@patient_button(SUPPLY)
async def on_supply_button(t: Turn, patient: Patient, button: SupplyButton) -> None:
    plan = await rules.plan_of(t.session, patient.id)
    if plan is None or plan.id != button.plan_id or not plan.active:
        answer_expired_button(t)
        return
    t.clear_buttons()
    following = rules.supply_got(plan, rules.local_today(patient, utcnow()))
    log.info("event=medication.supply_got patient_id=%s", patient.id)
    if following is not None:  # the next shot, in 4 weeks
        await t.reply("meds.supply.next_shot", day=day_text(t.runtime, following, t.language))
        return
    await t.reply("meds.ask_supply", buttons=_days_rows(t, "supply", rules.SUPPLY_CHOICES, skip=True))


# ---- naloxone ----------------------------------------------------------------------------------------------


async def ask_naloxone(t: Turn) -> None:
    """ "Do you have naloxone (Narcan) at home?" (the end of set-up, and /meds)."""
    await t.reply(
        "naloxone.ask",
        buttons=[
            [(t.text(f"naloxone.buttons.{answer}"), NALOXONE.pack(NaloxoneButton(answer)))]
            for answer in NALOXONE_ANSWERS
        ],
    )


@patient_button(NALOXONE)
async def on_naloxone_button(t: Turn, patient: Patient, button: NaloxoneButton) -> None:
    await naloxone.record(t.session, patient, button.answer, utcnow())
    log.info("event=naloxone.answered patient_id=%s", patient.id)
    t.clear_buttons()
    await t.reply(f"naloxone.answers.{button.answer}")


async def after_overdose(t: Turn, patient: Patient, escalation_id: int) -> None:
    """A crisis message about an overdose: a day later, a reminder to replace naloxone (once per alert)."""
    now = utcnow()
    due = naloxone.replacement_time(patient, now)
    if await outbox.enqueue(t.session, [naloxone_replacement(t.runtime, patient, escalation_id, due)]):
        await naloxone.mark_reminded(t.session, patient.id, due)
        log.info("event=naloxone.replace_planned patient_id=%s escalation_id=%s", patient.id, escalation_id)


# ---- the counselor: /meds ALIAS ... and /patient -----------------------------------------------------------


async def _counselor(t: Turn, counselor: Counselor) -> None:
    if not t.args:
        await t.reply("meds.counselor_usage", alias="P-1234")
        return
    named = await workspace.patient_and_rest(t.session, counselor, t.args)
    patient = named.patient
    if patient is None:
        log.info("event=workspace.refused counselor_id=%s", counselor.id)
        await t.reply("caseload.not_found", alias=named.alias[:64])
        return
    words = named.rest.split()
    if not words:
        await t.send(await counselor_view(t, counselor, patient))
        return
    try:
        changed = await _counselor_change(t, counselor, patient, words)
    except rules.Invalid:
        await t.reply("meds.counselor_usage", alias=patient.alias)
        return
    await t.reply(
        "meds.counselor_saved",
        alias=patient.alias,
        view=await counselor_view(t, counselor, patient, audit_it=False),
    )
    if changed is not None:
        await _tell_patient(t, patient, changed)


async def _counselor_change(
    t: Turn, counselor: Counselor, patient: Patient, words: list[str]
) -> MedicationPlan | None:
    """Apply `/meds ALIAS off | refill DAY | shot DAY | MEDICINE [NAME...] [TIME|DAY]`; the plan, to tell the
    patient about (None: nothing they need to hear)."""
    first = words[0].lower()
    plan = await rules.plan_of(t.session, patient.id)
    today = rules.local_today(patient, utcnow())
    if first in STOP_WORDS:
        if plan is None or not rules.stop(t.session, plan, by=rules.SetBy.COUNSELOR, actor_id=counselor.id):
            return None
        return plan
    if first in SUPPLY_WORDS:
        day = rules.parse_day(" ".join(words[1:2]), today, counselor.language) if len(words) > 1 else None
        if plan is None or day is None:
            raise rules.Invalid("a day is needed")
        rules.set_next_supply(plan, day)
        return plan if plan.active else None
    kind = COUNSELOR_WORDS.get(first)
    if kind is None:
        raise rules.Invalid("unknown medicine")
    rest = words[1:]
    last = rest[-1] if rest else ""
    clock = parse_clock(last) if last else None
    day = rules.parse_day(last, today, counselor.language) if last and clock is None else None
    if clock is not None or day is not None:
        rest = rest[:-1]
    name = " ".join(rest) if kind is MedicationKind.OTHER else None
    if kind is MedicationKind.OTHER and not name:
        raise rules.Invalid("a name is needed")
    if (clock is None) if rules.is_daily(kind) else (day is None):
        raise rules.Invalid("a time or a day is needed")
    plan = await rules.choose(
        t.session, patient, kind, by=rules.SetBy.COUNSELOR, actor_id=counselor.id, name=name
    )
    if clock is not None:
        rules.set_dose_time(plan, clock)
    else:
        rules.set_next_supply(plan, day)
    log.info("event=medication.set counselor_id=%s patient_id=%s", counselor.id, patient.id)
    return plan


async def _tell_patient(t: Turn, patient: Patient, plan: MedicationPlan) -> None:
    """The patient hears that their care team set up (or stopped) their reminders, and how to change them."""
    language = patient.language
    text = t.runtime.text(
        "meds.set_by_counselor" if plan.active else "meds.stopped_by_counselor",
        language,
        daily=rules.is_daily(plan.kind),
        time=format_clock(plan.dose_time) if plan.dose_time else "",
        day=day_text(t.runtime, plan.next_supply, language) if plan.next_supply else "",
    )
    now = utcnow()
    planned = outbox.Planned(
        key=PLAN_SET_KEY.pack(PlanSetKey(plan.id, t.update.update_id)),
        kind=PLAN_SET_KIND,
        chat_id=patient.chat_id,
        text=text,
        due_at=now,
        priority=Priority.NORMAL,
        patient_id=patient.id,
    )
    if await outbox.enqueue(t.session, [planned]):
        t.wake_outbox()


async def counselor_view(t: Turn, counselor: Counselor, patient: Patient, *, audit_it: bool = True) -> str:
    """The patient's medication reminders, their answers over the last 14 days, and naloxone at home: for
    `/meds ALIAS` and `/patient ALIAS`. Viewing it is audited (as part of /patient there)."""
    plan = await rules.plan_of(t.session, patient.id)
    today = rules.local_today(patient, utcnow())
    days = await rules.recent_days(t.session, patient.id, today - timedelta(days=SUMMARY_DAYS - 1))
    counts = {status: sum(1 for d in days if d.status is status) for status in DoseStatus}
    found = await naloxone.status_of(t.session, patient.id)
    if audit_it:
        audit.record(
            t.session,
            "medication.viewed",
            actor_type="counselor",
            actor_id=counselor.id,
            subject_type="patient",
            subject_id=patient.id,
        )
    return t.text(
        "meds.counselor_view",
        alias=patient.alias,
        active=plan is not None and plan.active,
        medicine=medicine(t.runtime, plan, t.language) if plan is not None else "",
        daily=plan is not None and rules.is_daily(plan.kind),
        time=format_clock(plan.dose_time) if plan is not None and plan.dose_time else "",
        day=day_text(t.runtime, plan.next_supply, t.language)
        if plan is not None and plan.next_supply
        else "",
        private=plan is None or not plan.show_name,
        set_by=plan.set_by if plan is not None else "",
        days=SUMMARY_DAYS,
        taken=counts[DoseStatus.TAKEN],
        missed=counts[DoseStatus.MISSED],
        ran_out=counts[DoseStatus.RAN_OUT],
        unanswered=counts[DoseStatus.UNANSWERED] + counts[DoseStatus.ASKED] + counts[DoseStatus.NOT_YET],
        naloxone=found.has_naloxone if found is not None and found.has_naloxone else "unknown",
        naloxone_when=local_time(t.runtime, found.answered_at, counselor)
        if found is not None and found.answered_at
        else "",
        replace_when=local_time(t.runtime, found.replace_reminded_at, counselor)
        if found is not None and found.replace_reminded_at
        else "",
    )


# ---- typed answers -----------------------------------------------------------------------------------------


async def on_typed_answer(t: Turn, patient: Patient, text: str) -> bool:
    """Text typed after a button of these features asked for it (a medicine's name, a time, a day, a reply to
    the care team); False if nothing of theirs waits for it."""
    step = patient.onboarding_step
    typing = TYPING.parse(step)
    if typing is None:
        if step is not None and TYPING_UNTIMED.fullmatch(step):
            patient.onboarding_step = None  # asked before answers had a time: too old to be one
        return False
    if utcnow() - typing.asked_at >= timedelta(hours=t.runtime.settings.typed_answer_hours):
        # Asked too long ago: these words are not that answer (a message days later is not a medicine's
        # name, nor a reply to the team); they are read as any other message.
        patient.onboarding_step = None
        log.info("event=typed_answer.expired patient_id=%s", patient.id)
        if isinstance(typing, TypingReply):  # they may have meant it for their counselor: say how it goes
            await t.reply("messages.reply_expired")
        return False
    if isinstance(typing, TypingReply):
        await care_messages.on_typed(t, patient, typing, text)
    else:
        await on_typed(t, patient, typing, text)
    return True
