"""What a patient is promised when their care team is told: only what the clinic can keep at that moment.

- In office hours (OFFICE_HOURS, in the clinic's zone, not on OFFICE_CLOSED_DAYS): the care team will
  contact them today.
- After hours, when the on-call counselor (`python -m bot oncall`) was paged about this very alert: that.
- Otherwise: when someone will call (the next office opening, in the patient's own time zone) and the
  after-hours number (AFTER_HOURS_PHONE).

Whether the on-call counselor was paged is read from the outbox (a page of this escalation for a counselor
on call now), not worked out again here: the paging rules decide who is paged, this only reports it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.models import Escalation, EscalationStatus, OutboxMessage
from bot.risk import oncall
from bot.risk.callbacks import pages_of

if TYPE_CHECKING:
    from bot.runtime import Runtime


class Promise(enum.StrEnum):
    TODAY = "today"  # office hours
    ON_CALL = "on_call"  # after hours; the on-call counselor was paged about this alert
    LATER = "later"  # nobody now: the next office opening, and the after-hours number
    NOT_SHARED = "not_shared"  # the patient withdrew consent: the care team was not told
    NOT_YET_SHARED = "not_yet_shared"  # the patient has not agreed to share yet: the care team was not told


@dataclass(frozen=True)
class Kept:
    promise: Promise
    opens: datetime | None = None  # LATER: the next office opening


async def promise_for(
    session: AsyncSession, settings: Settings, now: datetime, escalation_id: int | None = None
) -> Kept:
    """What may be promised now about an alert (`escalation_id`) or a flag (None) just raised."""
    kept = by_the_hour(settings, now)
    after_hours = kept.promise is Promise.LATER
    if after_hours and escalation_id is not None and await on_call_paged(session, escalation_id, now):
        return Kept(Promise.ON_CALL)
    return kept


def by_the_hour(settings: Settings, now: datetime) -> Kept:
    """The promise when nobody on call was paged: today in office hours, else the next opening."""
    if settings.office.covers(now, settings.timezone):
        return Kept(Promise.TODAY)
    return Kept(Promise.LATER, settings.office.next_opening(now, settings.timezone))


async def latest_open(session: AsyncSession, patient_id: int) -> int | None:
    """The patient's most recent escalation not yet resolved (what a promise made later is about)."""
    found: int | None = await session.scalar(
        select(Escalation.id)
        .where(Escalation.patient_id == patient_id, Escalation.status != EscalationStatus.RESOLVED)
        .order_by(Escalation.created_at.desc(), Escalation.id.desc())
        .limit(1)
    )
    return found


async def on_call_paged(session: AsyncSession, escalation_id: int, now: datetime) -> bool:
    """A counselor on call now has a page of this escalation in the outbox (queued or sent)."""
    on_duty = [counselor.id for counselor in await oncall.on_call(session, now)]
    if not on_duty:
        return False
    found = await session.scalar(
        select(OutboxMessage.id)
        .where(pages_of(escalation_id), OutboxMessage.counselor_id.in_(on_duty))
        .limit(1)
    )
    return found is not None


def render(runtime: Runtime, kept: Kept, timezone: str, language: str, now: datetime) -> str:
    """The promise in the patient's words: `promise.<kind>`, with the opening in their time zone."""
    if kept.opens is None:
        return runtime.text(f"promise.{kept.promise}", language)
    return runtime.text(
        f"promise.{kept.promise}", language, when=when(runtime, kept.opens, timezone, language, now)
    )


def when(runtime: Runtime, opens: datetime, timezone: str, language: str, now: datetime) -> str:
    """An office opening as the patient reads it, in their time zone: "tomorrow at 8:00 AM", "on Monday at
    8:00 AM", and with the date when it is a week or more away."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = runtime.settings.timezone
    local, today = opens.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime(runtime.text("promise.time_format", language)).lstrip("0")
    if local.date() == today:
        return runtime.text("promise.when.today", language, time=clock)
    if local.date() == today + timedelta(days=1):
        return runtime.text("promise.when.tomorrow", language, time=clock)
    weekday = runtime.text(f"promise.weekdays.{local.weekday()}", language)
    if local.date() < today + timedelta(days=7):
        return runtime.text("promise.when.weekday", language, time=clock, weekday=weekday)
    # A week or more away (OFFICE_CLOSED_DAYS): "on Monday" alone would name the wrong one.
    return runtime.text(
        "promise.when.date", language, time=clock, weekday=weekday, month=local.month, day=local.day
    )
