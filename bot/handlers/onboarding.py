"""Set-up after consent: time zone, check-in time, language — by button or typed answer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.core.models import Patient, PatientStatus
from bot.enrollment import onboarding as rules
from bot.enrollment.callbacks import OTHER, SETUP, SetupAnswer
from bot.enrollment.onboarding import Step
from bot.handlers import medication
from bot.handlers.base import Turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import patient_button
from bot.outbox.markup import Button

log = logging.getLogger(__name__)

Data = Callable[[Step, str], str]  # the button data of an answer to a step


def _zone_label(t: Turn, zone: str) -> str:
    return t.text(f"onboarding.zones.{zone.split('/')[-1].lower()}")


def typed_zone(t: Turn, text: str) -> str:
    """A time-zone button's label typed out (in any language, any case, with or without accents, or only
    its first word: "central", "Centro (Chicago)") is that button's zone; anything else is left to
    `rules.parse_timezone` (zone names and cities)."""
    typed = rules.plain(text)
    for zone in rules.COMMON_TIMEZONES:
        for language in t.runtime.catalog.languages:
            label = rules.plain(t.runtime.text(f"onboarding.zones.{zone.split('/')[-1].lower()}", language))
            if typed and typed in (label, label.split("(")[0].strip()):
                return zone
    return text


def _setup_data(step: Step, value: str) -> str:
    return SETUP.pack(SetupAnswer(step, value))


def choice_buttons(t: Turn, step: Step, data: Data = _setup_data) -> list[list[Button]]:
    """The answers offered for a set-up question; /settings offers the same with its own `data`."""
    if step is Step.TIMEZONE:
        rows = [[(_zone_label(t, zone), data(step, zone))] for zone in rules.COMMON_TIMEZONES]
        return [*rows, [(t.text("onboarding.other_zone_button"), data(step, OTHER))]]
    if step is Step.CHECKIN_TIME:
        times = [
            (rules.format_clock(c), data(step, rules.format_clock(c))) for c in rules.COMMON_CHECKIN_TIMES
        ]
        return [times[:3], times[3:], [(t.text("onboarding.other_time_button"), data(step, OTHER))]]
    languages = t.runtime.catalog.languages
    return [[(t.runtime.text("language_name", lang), data(step, lang)) for lang in languages]]


async def ask_current(t: Turn, patient: Patient) -> None:
    step = Step(patient.onboarding_step or Step.TIMEZONE)
    await t.reply(f"onboarding.ask_{step.value}", buttons=choice_buttons(t, step))


async def _apply(t: Turn, patient: Patient, step: Step, value: str) -> None:
    try:
        following = await rules.answer(t.session, patient, step, value, languages=t.runtime.catalog.languages)
    except rules.Invalid:
        await t.reply(f"onboarding.invalid_{step.value}")
        return
    t.clear_buttons()
    log.info("event=onboarding.answered patient_id=%s step=%s", patient.id, step.value)
    t.language = patient.language
    if following is not None:
        await ask_current(t, patient)
        return
    assert patient.checkin_time is not None
    await t.reply(
        "onboarding.done",
        keyboard=t.help_now_keyboard(),  # "Help now" stays under the chat from here on
        zone=patient.timezone,
        checkin_time=rules.format_clock(patient.checkin_time),
        language_name=t.runtime.text("language_name", patient.language),
    )
    await medication.ask_naloxone(t)  # one more question, in a message of its own (issue 22)


@patient_button(SETUP, active=False)
async def on_button(t: Turn, patient: Patient, button: SetupAnswer) -> None:
    step = button.step
    if patient.status is not PatientStatus.ONBOARDING or patient.onboarding_step != step:
        answer_expired_button(t)
        return
    if button.value == OTHER:
        await t.reply(f"onboarding.type_{step.value}")
        return
    await _apply(t, patient, step, button.value)


async def on_typed_answer(t: Turn, patient: Patient, text: str) -> None:
    """A patient in set-up typed instead of tapping: take it as the answer to the current question."""
    step = Step(patient.onboarding_step or Step.TIMEZONE)
    if step is Step.LANGUAGE:
        await ask_current(t, patient)
        return
    await _apply(t, patient, step, typed_zone(t, text) if step is Step.TIMEZONE else text)
