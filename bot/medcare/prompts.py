"""The messages medication support and naloxone send on their own (through the outbox): the daily dose
question, the refill or shot reminder, the naloxone replacement reminder. Text from content/, in the patient's
language; the medicine is named only when the patient chose so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from bot.core.models import AftercareCheckIn, DoseDay, MedicationKind, MedicationPlan, Patient, Priority
from bot.enrollment.onboarding import format_clock
from bot.medcare import aftercare, medication
from bot.medcare.callbacks import (
    AFTERCARE_ANSWER,
    AFTERCARE_CHOICE,
    ANSWERS,
    DOSE,
    DOSE_KEY,
    REPLACE_KEY,
    REPLACE_KIND,
    SUPPLY,
    SUPPLY_KEY,
    SUPPLY_KIND,
    AftercareAnswer,
    AftercareChoice,
    DoseButton,
    DoseKey,
    ReplaceKey,
    SupplyButton,
    SupplyKey,
)
from bot.outbox import store as outbox
from bot.outbox.markup import Button, Rows, scale_rows
from bot.risk import use

if TYPE_CHECKING:
    from bot.runtime import Runtime


def medicine(runtime: Runtime, plan: MedicationPlan, language: str) -> str:
    """The medicine's name as the patient knows it (the name typed for "another medicine")."""
    if plan.kind is MedicationKind.OTHER and plan.other_name:
        return plan.other_name
    return runtime.text(f"meds.kinds.{plan.kind.value}", language)


def day_text(runtime: Runtime, day: date, language: str) -> str:
    """ "Thu Dec 03", with the weekday names and date format of the schedule's texts."""
    weekday = runtime.text(f"schedule.weekdays.{day.weekday()}", language)
    return f"{weekday} {day.strftime(runtime.text('schedule.date_format', language))}"


def dose_buttons(runtime: Runtime, language: str, dose: DoseDay) -> Rows:
    buttons = [
        (runtime.text(f"meds.dose.buttons.{answer.value}", language), DOSE.pack(DoseButton(dose.id, answer)))
        for answer in ANSWERS
    ]
    return [buttons[:2], buttons[2:]]


def dose_question(
    runtime: Runtime, patient: Patient, plan: MedicationPlan, dose: DoseDay, now: datetime, *, again: bool
) -> outbox.Planned:
    assert plan.dose_time is not None
    language = patient.language
    text = runtime.text(
        "meds.dose.again" if again else "meds.dose.ask",
        language,
        time=format_clock(plan.dose_time),
        medicine=medicine(runtime, plan, language) if plan.show_name else "",
    )
    kind = "dose_again" if again else "dose_prompt"
    buttons = dose_buttons(runtime, language, dose)
    key = DOSE_KEY.pack(DoseKey(kind, dose.id))
    return outbox.to_patient(patient, key, kind, text, buttons=buttons, due_at=now, expires_at=dose.closes_at)


def supply_reminder(
    runtime: Runtime, patient: Patient, plan: MedicationPlan, before: int, now: datetime
) -> outbox.Planned:
    assert plan.next_supply is not None
    language = patient.language
    shot = not medication.is_daily(plan.kind)
    text = runtime.text(
        "meds.supply.reminder",
        language,
        shot=shot,
        today=before == 0,
        day=day_text(runtime, plan.next_supply, language),
        medicine=medicine(runtime, plan, language) if plan.show_name else "",
    )
    label = runtime.text("meds.supply.got_shot_button" if shot else "meds.supply.got_button", language)
    return outbox.to_patient(
        patient,
        SUPPLY_KEY.pack(SupplyKey(plan.id, plan.next_supply, before)),
        SUPPLY_KIND,
        text,
        buttons=[[(label, SUPPLY.pack(SupplyButton(plan.id)))]],
        due_at=now,
        priority=Priority.BULK,
    )


def naloxone_replacement(
    runtime: Runtime, patient: Patient, escalation_id: int, due: datetime
) -> outbox.Planned:
    text = runtime.text("naloxone.replace", patient.language)
    key = REPLACE_KEY.pack(ReplaceKey(escalation_id))
    return outbox.to_patient(patient, key, REPLACE_KIND, text, due_at=due, in_program=False)  # aftercare too


# ---- aftercare ------------------------------------------------------------------------------------------


def offer_buttons(text: Callable[[str], str]) -> Rows:
    """The offer at discharge: yes, or no thanks (`text` renders a key in the patient's language)."""
    return [
        [(text("aftercare.yes_button"), AFTERCARE_CHOICE.pack(AftercareChoice("yes")))],
        [(text("aftercare.no_button"), AFTERCARE_CHOICE.pack(AftercareChoice("no")))],
    ]


def aftercare_question(runtime: Runtime, language: str, row: AftercareCheckIn) -> tuple[str, Rows]:
    """The check-in's current question and its buttons."""
    step = aftercare.Question(row.step or aftercare.Question.CRAVING)

    def data(value: str) -> str:
        return AFTERCARE_ANSWER.pack(AftercareAnswer(row.id, step.value, value))

    skip = runtime.text("checkin.buttons.skip", language)
    # What was used and how: the daily check-in's own questions, word for word.
    asked = "checkin" if step in aftercare.USE_QUESTIONS else "aftercare"
    text = runtime.text(f"{asked}.ask.{step.value}", language)
    if step is aftercare.Question.CRAVING:
        return text, scale_rows(data, *aftercare.CRAVING_RANGE, skip)
    if step is aftercare.Question.MOOD:
        return text, scale_rows(data, *aftercare.MOOD_RANGE, skip)
    if step is aftercare.Question.USE:
        yes_no: list[Button] = [
            (runtime.text("checkin.buttons.no", language), data("no")),
            (runtime.text("checkin.buttons.yes", language), data("yes")),
        ]
        return text, [yes_no, [(skip, data("skip"))]]
    if step is aftercare.Question.USE_WHAT:  # the check-in's choices: a tap, or typed in their own words
        choices: list[Button] = [
            (runtime.text(f"checkin.buttons.use_what.{s}", language), data(s)) for s in use.CHOICES
        ]
        return text, [*(choices[i : i + 2] for i in range(0, len(choices), 2)), [(skip, data("skip"))]]
    if step is aftercare.Question.USE_HOW:
        return text, [
            *(
                [(runtime.text(f"checkin.buttons.use_how.{key}", language), data(key))]
                for key in aftercare.USE_HOW
            ),
            [(skip, data("skip"))],
        ]
    rows: list[list[Button]] = [
        [(runtime.text(f"aftercare.connected.{value}", language), data(value))]
        for value in aftercare.CONNECTED
    ]
    return text, [*rows, [(skip, data("skip"))]]


def aftercare_prompt(
    runtime: Runtime, patient: Patient, row: AftercareCheckIn, weeks_since: int
) -> tuple[str, Rows]:
    """The message that opens a check-in: a hello (`weeks_since` discharge), the first question, and "stop
    these check-ins"."""
    language = patient.language
    text, rows = aftercare_question(runtime, language, row)
    intro = runtime.text("aftercare.intro", language, week=weeks_since)
    return f"{intro}\n\n{text}", [*rows, aftercare_stop_row(runtime, language)]


def aftercare_stop_row(runtime: Runtime, language: str) -> list[Button]:
    """ "Stop these check-ins": under a check-in's opening message, and under the answer to /stopcheckins."""
    return [(runtime.text("aftercare.stop_button", language), AFTERCARE_CHOICE.pack(AftercareChoice("stop")))]
