"""Session reminders: rendered per patient and planned into the outbox ahead of time (the scheduler's planning
job)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.db import transaction
from bot.core.models import Patient, Priority, Rsvp, utcnow
from bot.outbox import store as outbox
from bot.outbox.markup import Button
from bot.schedule import rules
from bot.schedule.callbacks import RSVP, RsvpButton

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


PLAN_AHEAD = timedelta(minutes=15)  # reminders go into the outbox this long before they are due


def when(runtime: Runtime, moment: datetime, timezone: str, language: str) -> str:
    """A session time in the reader's zone and language: "Mon Nov 23, 18:00"."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = runtime.settings.timezone
    local = moment.astimezone(zone)
    return runtime.text(
        "schedule.when",
        language,
        weekday=runtime.text(f"schedule.weekdays.{local.weekday()}", language),
        date=local.strftime(runtime.text("schedule.date_format", language)),
        time=local.strftime("%H:%M"),
    )


def zone_name(runtime: Runtime, moment: datetime, timezone: str) -> str:
    """The zone `when` wrote a time in, as readers know it at that moment ("EST", "CDT")."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = runtime.settings.timezone
    return moment.astimezone(zone).tzname() or timezone


def describe(runtime: Runtime, item: rules.Upcoming, patient: Patient, key: str) -> str:
    return runtime.text(
        key,
        patient.language,
        title=item.title,
        when=when(runtime, item.occurrence.start, patient.timezone, patient.language),
        location=item.location,
        url=item.session.url,
    )


def rsvp_buttons(runtime: Runtime, item: rules.Upcoming, language: str) -> list[list[Button]]:
    def button(choice: Rsvp) -> Button:
        data = RSVP.pack(RsvpButton(item.session.id, item.occurrence.original_start, choice))
        return runtime.text(f"schedule.buttons.{choice}", language), data

    return [[button(Rsvp.COMING), button(Rsvp.LATE)], [button(Rsvp.CANNOT)]]


def reminder(runtime: Runtime, due: rules.DueReminder) -> outbox.Planned:
    patient, item = due.patient, due.upcoming
    return outbox.Planned(
        key=due.key,
        kind=rules.REMINDER_KIND,
        chat_id=patient.chat_id,
        text=describe(runtime, item, patient, "schedule.reminder"),
        buttons=rsvp_buttons(runtime, item, patient.language),
        due_at=due.due_at,
        expires_at=item.occurrence.start,  # once the session has started a reminder is no use
        priority=Priority.BULK,
        patient_id=patient.id,
        ref={"session_id": item.session.id},
    )


async def plan(runtime: Runtime) -> int:
    """The scheduler's planning job: put the reminders due soon into the outbox (idempotent)."""
    async with transaction(runtime.sessions) as session:
        now = utcnow()
        # Ahead by more than the gap between runs (several, should one fail), so none falls between two.
        ahead = max(PLAN_AHEAD, 3 * timedelta(seconds=runtime.settings.plan_tick_seconds))
        due = await rules.due_reminders(session, now, runtime.settings.reminder_offsets, ahead=ahead)
        added = await outbox.enqueue(session, [reminder(runtime, d) for d in due])
    if added:
        log.info("event=reminders.planned count=%d", added)
        runtime.wake_outbox()
    return added
