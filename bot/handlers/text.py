"""Free text: route it by who wrote it and where they are in their flows."""

from __future__ import annotations

from telegram import Update

from bot.handlers import consent, onboarding
from bot.handlers.base import Context, turn
from bot.handlers.fallback import answer_stranger
from bot.models import Counselor, Patient, PatientStatus


async def on_text(update: Update, context: Context) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    async with turn(update, context) as t:
        person = t.person
        if isinstance(person, Counselor):
            await t.reply("help.counselor")
        elif not isinstance(person, Patient):
            await answer_stranger(t)
        elif person.status is PatientStatus.CONSENT_PENDING:
            await t.reply("consent.required")
            await consent.show_consent(t)
        elif person.status is PatientStatus.ONBOARDING:
            await onboarding.on_typed_answer(t, person, message.text)
        elif person.status is PatientStatus.CONSENT_REVOKED:
            await consent.show_revoked_limits(t)
        elif person.status is PatientStatus.DISCHARGED:
            await t.reply("discharged.note")
        else:
            await t.reply("input.not_understood")
