"""The consent's words as a patient reads them (the program's name, the response hours), and asking an
existing patient to agree to a new version (CONSENT_VERSION) at their next message or command.

Its own module, so that the command guards (bot.handlers.guards) can ask without importing the consent
handlers, which use those guards."""

from __future__ import annotations

import logging

from bot.core.models import Patient
from bot.enrollment import consent as consent_rules
from bot.enrollment.callbacks import CONSENT, ConsentButton
from bot.handlers.base import Turn

log = logging.getLogger(__name__)

ACCEPT = CONSENT.pack(ConsentButton("accept"))
DECLINE = CONSENT.pack(ConsentButton("decline"))
REVIEW = CONSENT.pack(ConsentButton("review"))


def program(t: Turn) -> str:
    """The program's name: the clinic's PROGRAM_NAME setting, or the content's generic words."""
    return t.runtime.settings.program_name or t.text("program.name")


def response_hours(t: Turn) -> str:
    """OFFICE_HOURS in words, in the turn's language: "Mon-Fri, 08:00 to 18:00, Eastern (New York) time"."""
    settings = t.runtime.settings
    office = settings.office
    days = sorted(office.days)
    names = [t.text(f"schedule.weekdays.{day}") for day in days]
    in_a_row = len(days) > 2 and days == list(range(days[0], days[-1] + 1))
    zone_key = f"onboarding.zones.{settings.default_timezone.split('/')[-1].lower()}"
    zone = t.text(zone_key) if t.runtime.catalog.has(zone_key) else settings.default_timezone
    return t.text(
        "consent.hours",
        days=f"{names[0]}–{names[-1]}" if in_a_row else ", ".join(names),
        start=office.start.strftime("%H:%M"),
        end=office.end.strftime("%H:%M"),
        zone=zone,
    )


def body(t: Turn) -> str:
    return t.text("consent.body", program=program(t), hours=response_hours(t))


def choices(t: Turn) -> list[list[tuple[str, str]]]:
    return [[(t.text("consent.accept_button"), ACCEPT)], [(t.text("consent.decline_button"), DECLINE)]]


async def ask_to_update(t: Turn, patient: Patient) -> bool:
    """An active patient who agreed to an earlier version is shown this one (True); else nothing (False)."""
    if not await consent_rules.outdated(t.session, patient):
        return False
    await show_update(t, patient)
    return True


async def show_update(t: Turn, patient: Patient) -> None:
    log.info("event=consent.update_asked patient_id=%s", patient.id)
    await t.reply("consent.update", buttons=choices(t), body=body(t))
