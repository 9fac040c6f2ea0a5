"""The messages that ask a check-in question: text and buttons, for a reply or for the outbox (scheduled
prompts and the nudge)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin import rules
from bot.checkin.callbacks import CHECKIN, PROMPT_KEY, TRIGGER_FIELD, CheckinButton, PromptKey
from bot.checkin.rules import Question
from bot.core.models import CheckIn, Patient, utcnow
from bot.outbox import store as outbox
from bot.outbox.markup import Button, Rows, scale_rows
from bot.risk import use

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def _data(checkin: CheckIn, field: str, value: str) -> str:
    return CHECKIN.pack(CheckinButton(checkin.id, field, value))


def question_buttons(runtime: Runtime, language: str, checkin: CheckIn) -> Rows:
    def text(key: str) -> str:
        return runtime.text(f"checkin.buttons.{key}", language)

    step = Question(checkin.step or Question.CRAVING)
    skip: list[Button] = [(text("skip"), _data(checkin, step, "skip"))]
    if step is Question.CRAVING:
        return scale_rows(lambda value: _data(checkin, step, value), *rules.CRAVING_RANGE, text("skip"))
    if step is Question.MOOD:
        return scale_rows(lambda value: _data(checkin, step, value), *rules.MOOD_RANGE, text("skip"))
    if step is Question.TRIGGERS:
        chosen = set(checkin.triggers or [])
        labels = [
            (("✓ " if key in chosen else "") + text(f"triggers.{key}"), _data(checkin, TRIGGER_FIELD, key))
            for key in rules.TRIGGERS
        ]
        rows: list[list[Button]] = [labels[i : i + 2] for i in range(0, len(labels), 2)]
        return [*rows, [(text("done"), _data(checkin, TRIGGER_FIELD, "done")), skip[0]]]
    if step is Question.SLEEP:
        return [[(text(f"sleep.{key}"), _data(checkin, step, key)) for key in rules.SLEEP], skip]
    if step is Question.USE:
        return [[(text("no"), _data(checkin, step, "no")), (text("yes"), _data(checkin, step, "yes"))], skip]
    if step is Question.USE_WHAT:  # a tap, or typed in the patient's own words
        choices = [(text(f"use_what.{s}"), _data(checkin, step, s)) for s in use.CHOICES]
        return [*(choices[i : i + 2] for i in range(0, len(choices), 2)), skip]
    if step is Question.USE_HOW:
        return [[(text(f"use_how.{key}"), _data(checkin, step, key))] for key in rules.USE_HOW] + [skip]
    return [skip]  # typed answers: the "other" trigger, the note


def question(
    runtime: Runtime, language: str, checkin: CheckIn, *, intro: str | None = None
) -> tuple[str, Rows]:
    """The message asking the check-in's current question, optionally after an intro line."""
    text = runtime.text(f"checkin.ask.{checkin.step}", language)
    if intro:
        text = f"{runtime.text(intro, language)}\n\n{text}"
    return text, question_buttons(runtime, language, checkin)


def _prompt(runtime: Runtime, patient: Patient, checkin: CheckIn, kind: str, intro: str) -> outbox.Planned:
    text, buttons = question(runtime, patient.language, checkin, intro=intro)
    key = PROMPT_KEY.pack(PromptKey(kind, checkin.id))
    return outbox.to_patient(
        patient, key, kind, text, buttons=buttons, due_at=utcnow(), expires_at=checkin.expires_at
    )


async def scheduled_prompts(
    runtime: Runtime, session: AsyncSession, patients: list[Patient]
) -> list[outbox.Planned]:
    """Open today's check-in for each patient it is due for; the first question for each, for the outbox."""
    now = utcnow()
    expiry = timedelta(hours=runtime.settings.checkin_expiry_hours)
    messages: list[outbox.Planned] = []
    for patient in patients:
        checkin = await rules.begin_scheduled(session, patient, now, expiry=expiry)
        if checkin is None:
            continue
        log.info("event=checkin.prompted patient_id=%s checkin_id=%s", patient.id, checkin.id)
        messages.append(_prompt(runtime, patient, checkin, "checkin_prompt", "checkin.intro_scheduled"))
    return messages


def nudge(runtime: Runtime, patient: Patient, checkin: CheckIn) -> outbox.Planned:
    return _prompt(runtime, patient, checkin, "checkin_nudge", "checkin.nudge")
