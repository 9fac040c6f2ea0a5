"""/settings: change the check-in time, time zone or language, with the same choices as set-up."""

from __future__ import annotations

import logging

from telegram import Update

from bot.core.models import Patient
from bot.enrollment import onboarding as rules
from bot.enrollment.callbacks import (
    OTHER,
    SETTING_ANSWER,
    SETTING_CHOSEN,
    SETTINGS,
    SettingAnswer,
    SettingChosen,
)
from bot.handlers.base import Context, Turn, turn
from bot.handlers.guards import patient_button
from bot.handlers.onboarding import choice_buttons, typed_zone

log = logging.getLogger(__name__)


def _values(t: Turn, patient: Patient) -> dict[str, str]:
    return {
        "zone": patient.timezone,
        "checkin_time": rules.format_clock(patient.checkin_time) if patient.checkin_time else "-",
        "language_name": t.runtime.text("language_name", patient.language),
    }


async def settings_command(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        patient = t.active_patient
        if patient is None:
            person = t.person
            await t.reply(
                f"help.patient_{person.status.value}" if isinstance(person, Patient) else "input.not_for_role"
            )
            return
        patient.onboarding_step = None  # a half-typed change from before is dropped
        await t.reply(
            "settings.menu",
            buttons=[
                [(t.text("settings.checkin_time_button"), _chosen(rules.Step.CHECKIN_TIME))],
                [(t.text("settings.timezone_button"), _chosen(rules.Step.TIMEZONE))],
                [(t.text("settings.language_button"), _chosen(rules.Step.LANGUAGE))],
            ],
            **_values(t, patient),
        )


def _chosen(step: rules.Step) -> str:
    return SETTING_CHOSEN.pack(SettingChosen(step))


def _answer(step: rules.Step, value: str) -> str:
    return SETTING_ANSWER.pack(SettingAnswer(step, value))


@patient_button(SETTINGS)
async def on_button(t: Turn, patient: Patient, button: SettingChosen | SettingAnswer) -> None:
    step = button.step
    if isinstance(button, SettingChosen):
        await t.reply(f"onboarding.ask_{step.value}", buttons=choice_buttons(t, step, _answer))
    elif button.value == OTHER:
        rules.await_typed(patient, step)
        await t.reply(f"onboarding.type_{step.value}")
    else:
        await _change(t, patient, step, button.value)


async def on_typed(t: Turn, patient: Patient, text: str) -> None:
    """The patient tapped "other" in /settings and typed the new value."""
    step = rules.Step(patient.onboarding_step or rules.Step.CHECKIN_TIME)
    if step is rules.Step.LANGUAGE:
        await t.reply("onboarding.invalid_language")
        return
    await _change(t, patient, step, typed_zone(t, text) if step is rules.Step.TIMEZONE else text)


async def _change(t: Turn, patient: Patient, step: rules.Step, value: str) -> None:
    try:
        rules.change(t.session, patient, step, value, languages=t.runtime.catalog.languages)
    except rules.Invalid:
        await t.reply(f"onboarding.invalid_{step.value}")
        return
    log.info("event=settings.changed patient_id=%s setting=%s", patient.id, step.value)
    t.clear_buttons()
    t.language = patient.language
    # The "Help now" button is sent again: its label follows a change of language.
    await t.send(t.text("settings.saved", **_values(t, patient)), keyboard=t.help_now_keyboard())
