"""/sos and the "Help now" button kept under the chat (issue 18 item 8): help at any time, for anyone.

Everyone gets the crisis lines (a stranger, a patient who withdrew consent or whose time in the program
ended too), with the clinic's numbers when set. An enrolled patient also gets their own people and
professionals and their reason for living from their safety plan. A patient who shares with their care team
(set up or setting up) gets a "Tell my care team now" button: it raises an imminent alert of its own
category through the usual escalation path (written and paged in the tap's transaction, re-paged until
acknowledged), and a second tap while that alert is unanswered pages nobody again.

The "Help now" button is a reply keyboard: tapping it sends its label as text, which `is_button` recognises
in any language before anything else reads the text.
"""

from __future__ import annotations

import logging
from typing import Literal

from telegram import Update

from bot.core.models import Patient, PatientStatus
from bot.handlers import crisis
from bot.handlers.base import Context, Turn, turn
from bot.handlers.fallback import answer_expired_button
from bot.handlers.guards import patient_button
from bot.risk import Category, RiskLevel
from bot.risk import safety_plan as plan_rules
from bot.risk import sos as rules
from bot.risk.callbacks import SOS, SosButton
from bot.runtime import Runtime

log = logging.getLogger(__name__)

Team = Literal["offer", "stopped", "ended", "none"]
TELL_TEAM = SOS.pack(SosButton("team"))
# consent given, and the care team may be told (in aftercare too)
SHARING = (PatientStatus.ACTIVE, PatientStatus.ONBOARDING, PatientStatus.AFTERCARE)


def is_button(runtime: Runtime, text: str) -> bool:
    """The text is the "Help now" label in some language (a keyboard sent before a language change too)."""
    typed = text.strip().casefold()
    return any(
        typed == runtime.text("sos.keyboard_button", language).casefold()
        for language in runtime.catalog.languages
    )


def _team(person: object) -> Team:
    if not isinstance(person, Patient):
        return "none"
    if person.status in SHARING:
        return "offer"
    if person.status is PatientStatus.CONSENT_REVOKED:
        return "stopped"
    if person.status is PatientStatus.DISCHARGED:
        return "ended"
    return "none"


async def sos_command(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        await answer(t)


async def answer(t: Turn) -> None:
    """The crisis lines, the clinic's numbers, the patient's own plan contacts and reason, and the button."""
    person = t.person
    plan = await plan_rules.plan_of(t.session, person.id) if isinstance(person, Patient) else None
    team = _team(person)
    settings = t.runtime.settings
    log.info("event=sos.shown patient=%s team=%s", isinstance(person, Patient), team)
    await t.reply_urgently(
        "sos.reply",
        buttons=[[(t.text("sos.team_button"), TELL_TEAM)]] if team == "offer" else None,
        clinic_phone=settings.clinic_phone or "",
        after_hours_phone=settings.after_hours_phone or "",
        plan_contacts=plan_rules.crisis_contacts(plan) or "",
        reason=plan_rules.reason_for_living(plan) or "",
        team=team,
    )


@patient_button(SOS, active=False)
async def on_button(t: Turn, patient: Patient, button: SosButton) -> None:
    """Tell my care team now: an imminent alert, paged at once; never twice while it waits for an answer."""
    if patient.status not in SHARING:
        answer_expired_button(t)  # consent withdrawn or care ended since the button was sent
        return
    t.clear_buttons()
    waiting = await rules.unanswered_request(t.session, patient.id)
    if waiting is not None:
        log.info("event=sos.already patient_id=%s escalation_id=%s", patient.id, waiting.id)
        await t.reply_urgently("sos.team_already")
        return
    if patient.status is PatientStatus.ACTIVE:
        await crisis.set_aside(t, patient)  # nothing else waits for their words now
    await crisis.structured_signal(t, patient, RiskLevel.IMMINENT, Category.PATIENT_REQUEST, rules.SOURCE)
    log.info("event=sos.team_told patient_id=%s", patient.id)
    await t.reply_urgently("sos.team_told")
