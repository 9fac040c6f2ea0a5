"""The consent screen, /privacy and /revoke."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from telegram import Update

from bot.core.models import Patient, PatientStatus
from bot.enrollment import consent as consent_rules
from bot.handlers import onboarding
from bot.handlers.base import Context, Turn, remove_buttons, turn
from bot.handlers.fallback import answer_expired_button, answer_not_for_role

log = logging.getLogger(__name__)

ACCEPT, DECLINE, REVIEW = "consent:accept", "consent:decline", "consent:review"
REVOKE_CONFIRM, REVOKE_CANCEL = "revoke:confirm", "revoke:cancel"


async def show_consent(t: Turn) -> None:
    await t.reply(
        "consent.screen",
        buttons=[[(t.text("consent.accept_button"), ACCEPT)], [(t.text("consent.decline_button"), DECLINE)]],
    )


async def show_revoked_limits(t: Turn) -> None:
    await t.reply("revoke.limited", buttons=[[(t.text("consent.review_button"), REVIEW)]])


async def on_consent_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    async with turn(update, context) as t:
        patient = t.person
        awaiting = isinstance(patient, Patient) and patient.status in (
            PatientStatus.CONSENT_PENDING,
            PatientStatus.CONSENT_REVOKED,
        )
        if not isinstance(patient, Patient) or not awaiting:
            await answer_expired_button(t)
            return
        await query.answer()
        if query.data == REVIEW:
            await show_consent(t)
            return
        await remove_buttons(update)
        if query.data == DECLINE:
            log.info("event=consent.declined patient_id=%s", patient.id)
            await t.reply("consent.declined", buttons=[[(t.text("consent.review_button"), REVIEW)]])
            return
        await consent_rules.accept(t.session, patient)
        log.info("event=consent.accepted patient_id=%s", patient.id)
        if patient.status is PatientStatus.ONBOARDING:
            await t.reply("consent.accepted")
            await onboarding.ask_current(t, patient)
        else:
            await t.reply("consent.accepted_again")


async def privacy(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        if not isinstance(t.person, Patient):
            await t.reply("privacy.not_patient")
            return
        agreed = await consent_rules.active_consent(t.session, t.person.id)
        if agreed is None:
            await show_consent(t)
            return
        local = agreed.accepted_at.astimezone(ZoneInfo(t.person.timezone))
        await t.reply("privacy.restated", date=local.strftime("%Y-%m-%d"), version=agreed.version)


async def revoke(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        if not isinstance(t.person, Patient):
            await answer_not_for_role(t)
            return
        if await consent_rules.active_consent(t.session, t.person.id) is None:
            await t.reply("revoke.nothing")
            return
        await t.reply(
            "revoke.confirm_prompt",
            buttons=[
                [(t.text("revoke.confirm_button"), REVOKE_CONFIRM)],
                [(t.text("revoke.cancel_button"), REVOKE_CANCEL)],
            ],
        )


async def on_revoke_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    async with turn(update, context) as t:
        if (
            not isinstance(t.person, Patient)
            or await consent_rules.active_consent(t.session, t.person.id) is None
        ):
            await answer_expired_button(t)
            return
        await query.answer()
        await remove_buttons(update)
        if query.data == REVOKE_CANCEL:
            await t.reply("revoke.cancelled")
            return
        await consent_rules.revoke(t.session, t.person)
        log.info("event=consent.revoked patient_id=%s", t.person.id)
        await t.reply("revoke.done")
        await show_revoked_limits(t)
