"""The consent screen, /privacy and /revoke; and asking an existing patient to agree to a new version.

When CONSENT_VERSION changes, an active patient is asked at their next typed message or command (after risk
screening: a crisis is answered first) to agree to the new wording. Set-up is not repeated, and until they
agree their words wait (buttons of flows already under way still work; /sos, /privacy, /revoke, /mydata and
/deleteme always do).
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from telegram import Update

from bot.core.models import Patient, PatientStatus
from bot.enrollment import consent as consent_rules
from bot.enrollment.callbacks import CONSENT, REVOKE, ConsentButton, RevokeButton
from bot.handlers import onboarding
from bot.handlers.base import Context, Turn, turn
from bot.handlers.consent_update import REVIEW, ask_to_update, body, choices, program
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import enrolled_only, patient_button

log = logging.getLogger(__name__)

REVOKE_CONFIRM = REVOKE.pack(RevokeButton("confirm"))
REVOKE_CANCEL = REVOKE.pack(RevokeButton("cancel"))


async def show_consent(t: Turn) -> None:
    await t.reply("consent.screen", buttons=choices(t), body=body(t), program=program(t))


async def show_revoked_limits(t: Turn) -> None:
    await t.reply("revoke.limited", buttons=[[(t.text("consent.review_button"), REVIEW)]])


@patient_button(CONSENT, active=False)
async def on_consent_button(t: Turn, patient: Patient, button: ConsentButton) -> None:
    awaiting = patient.status in (PatientStatus.CONSENT_PENDING, PatientStatus.CONSENT_REVOKED)
    if not awaiting and await consent_rules.outdated(t.session, patient):
        await _on_update_button(t, patient, button)
        return
    if not awaiting:
        answer_expired_button(t)
        return
    if button.choice == "review":
        await show_consent(t)
        return
    t.clear_buttons()
    if button.choice == "decline":
        log.info("event=consent.declined patient_id=%s", patient.id)
        await t.reply("consent.declined", buttons=[[(t.text("consent.review_button"), REVIEW)]])
        return
    await consent_rules.accept(t.session, patient)
    log.info("event=consent.accepted patient_id=%s", patient.id)
    if patient.status is PatientStatus.ONBOARDING:
        await t.reply("consent.accepted")
        await onboarding.ask_current(t, patient)
    else:
        await t.reply("consent.accepted_again", keyboard=t.help_now_keyboard())


async def _on_update_button(t: Turn, patient: Patient, button: ConsentButton) -> None:
    """The answer of an active patient to a new version: set-up and their place in every flow are kept."""
    t.clear_buttons()
    if button.choice == "accept":
        await consent_rules.accept(t.session, patient)
        log.info("event=consent.updated patient_id=%s", patient.id)
        await t.reply("consent.update_accepted", keyboard=t.help_now_keyboard())
    elif button.choice == "decline":
        log.info("event=consent.update_declined patient_id=%s", patient.id)
        await t.reply("consent.update_later")
    else:
        await ask_to_update(t, patient)


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
        await t.reply(
            "privacy.restated", date=local.strftime("%Y-%m-%d"), version=agreed.version, body=body(t)
        )


@enrolled_only
async def revoke(t: Turn, patient: Patient) -> None:
    if await consent_rules.active_consent(t.session, patient.id) is None:
        await t.reply("revoke.nothing")
        return
    await t.reply(
        "revoke.confirm_prompt",
        buttons=[
            [(t.text("revoke.confirm_button"), REVOKE_CONFIRM)],
            [(t.text("revoke.cancel_button"), REVOKE_CANCEL)],
        ],
    )


@patient_button(REVOKE, active=False)
async def on_revoke_button(t: Turn, patient: Patient, button: RevokeButton) -> None:
    if await consent_rules.active_consent(t.session, patient.id) is None:
        answer_expired_button(t)
        return
    t.clear_buttons()
    if button.choice == "cancel":
        await t.reply("revoke.cancelled")
        return
    await consent_rules.revoke(t.session, patient)
    log.info("event=consent.revoked patient_id=%s", patient.id)
    await t.reply("revoke.done")
    await show_revoked_limits(t)
