"""Set-up after consent: time zone, check-in time, language — by button or typed answer."""

from __future__ import annotations

import logging

from telegram import Update

from bot.core.models import Patient, PatientStatus
from bot.enrollment import onboarding as rules
from bot.enrollment.onboarding import Step
from bot.handlers.base import Context, Turn, remove_buttons, turn
from bot.handlers.fallback import answer_expired_button
from bot.outbox.markup import Button

log = logging.getLogger(__name__)

PREFIX = {Step.TIMEZONE: "tz", Step.CHECKIN_TIME: "time", Step.LANGUAGE: "lang"}
STEP_OF_PREFIX = {prefix: step for step, prefix in PREFIX.items()}
OTHER = "other"


def _zone_label(t: Turn, zone: str) -> str:
    return t.text(f"onboarding.zones.{zone.split('/')[-1].lower()}")


def choice_buttons(t: Turn, step: Step, prefix: str = "") -> list[list[Button]]:
    """The answers offered for a set-up question; `prefix` tells /settings' buttons from set-up's."""
    tag = f"{prefix}{PREFIX[step]}"
    if step is Step.TIMEZONE:
        rows = [[(_zone_label(t, zone), f"{tag}:{zone}")] for zone in rules.COMMON_TIMEZONES]
        return [*rows, [(t.text("onboarding.other_zone_button"), f"{tag}:{OTHER}")]]
    if step is Step.CHECKIN_TIME:
        times = [
            (rules.format_clock(c), f"{tag}:{rules.format_clock(c)}") for c in rules.COMMON_CHECKIN_TIMES
        ]
        return [times[:3], times[3:], [(t.text("onboarding.other_time_button"), f"{tag}:{OTHER}")]]
    languages = t.runtime.catalog.languages
    return [[(t.runtime.text("language_name", lang), f"{tag}:{lang}") for lang in languages]]


async def ask_current(t: Turn, patient: Patient) -> None:
    step = Step(patient.onboarding_step or Step.TIMEZONE)
    await t.reply(f"onboarding.ask_{step.value}", buttons=choice_buttons(t, step))


async def _apply(t: Turn, patient: Patient, step: Step, value: str) -> None:
    try:
        following = await rules.answer(t.session, patient, step, value, languages=t.runtime.catalog.languages)
    except rules.Invalid:
        await t.reply(f"onboarding.invalid_{step.value}")
        return
    await remove_buttons(t.update)
    log.info("event=onboarding.answered patient_id=%s step=%s", patient.id, step.value)
    t.language = patient.language
    if following is not None:
        await ask_current(t, patient)
        return
    assert patient.checkin_time is not None
    await t.reply(
        "onboarding.done",
        zone=patient.timezone,
        checkin_time=rules.format_clock(patient.checkin_time),
        language_name=t.runtime.text("language_name", patient.language),
    )


async def on_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    prefix, _, value = query.data.partition(":")
    step = STEP_OF_PREFIX.get(prefix)
    async with turn(update, context) as t:
        patient = t.person
        current = (
            isinstance(patient, Patient)
            and patient.status is PatientStatus.ONBOARDING
            and patient.onboarding_step == step
        )
        if not isinstance(patient, Patient) or step is None or not current:
            await answer_expired_button(t)
            return
        await query.answer()
        if value == OTHER:
            await t.reply(f"onboarding.type_{step.value}")
            return
        await _apply(t, patient, step, value)


async def on_typed_answer(t: Turn, patient: Patient, text: str) -> None:
    """A patient in set-up typed instead of tapping: take it as the answer to the current question."""
    step = Step(patient.onboarding_step or Step.TIMEZONE)
    if step is Step.LANGUAGE:
        await ask_current(t, patient)
        return
    await _apply(t, patient, step, text)
