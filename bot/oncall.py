"""After hours: office hours in the clinic's time zone, and the on-call roster that gets imminent alerts
outside them (`python -m bot oncall set|list|remove`).

Shifts are stored in UTC and entered in the clinic's time zone (DEFAULT_TIMEZONE), so a shift across a
daylight-saving change lasts the hours the clinic means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Counselor, OnCallShift

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class OfficeHours:
    """Weekdays (0 = Monday) and a daily span; the end is exclusive, and an end before the start spans
    midnight."""

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """'Mon-Fri 08:00-18:00', 'mon 09:00-17:00' (case-insensitive)."""
        match = _HOURS.match(text.lower())
        if match is None:
            raise ValueError("office hours look like Mon-Fri 08:00-18:00")
        first, last = match["first"], match["last"] or match["first"]
        if first not in DAYS or last not in DAYS:
            raise ValueError(f"days are {', '.join(DAYS)}")
        a, b = DAYS.index(first), DAYS.index(last)
        days = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        try:
            start, end = (
                time.fromisoformat(match["start"].zfill(5)),
                time.fromisoformat(match["end"].zfill(5)),
            )
        except ValueError:
            raise ValueError("times are HH:MM, 00:00 to 23:59") from None
        if start == end:
            raise ValueError("office hours must not start and end at the same time")
        return cls(frozenset(days), start, end)

    def covers(self, moment: datetime, zone: ZoneInfo) -> bool:
        local = moment.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= clock < self.end
        # Overnight office hours: after the start on an office day, or before the end the morning after.
        if clock >= self.start:
            return local.weekday() in self.days
        return clock < self.end and (local.weekday() - 1) % 7 in self.days


async def on_call(session: AsyncSession, now: datetime) -> list[Counselor]:
    """Active, linked counselors whose shift covers `now`."""
    rows = await session.scalars(
        select(Counselor)
        .join(OnCallShift, OnCallShift.counselor_id == Counselor.id)
        .where(
            OnCallShift.starts_at <= now,
            OnCallShift.ends_at > now,
            Counselor.active.is_(True),
            Counselor.chat_id.is_not(None),
        )
        .order_by(Counselor.id)
    )
    return list({c.id: c for c in rows}.values())


async def add_shift(
    session: AsyncSession, counselor_id: int, starts_at: datetime, ends_at: datetime
) -> OnCallShift:
    if ends_at <= starts_at:
        raise ValueError("the shift must end after it starts")
    counselor = await session.get(Counselor, counselor_id)
    if counselor is None:
        raise ValueError(f"no counselor {counselor_id} (see `python -m bot counselor list`)")
    if not counselor.active:
        raise ValueError(f"counselor {counselor_id} is not active")
    shift = OnCallShift(counselor_id=counselor_id, starts_at=starts_at, ends_at=ends_at)
    session.add(shift)
    await session.flush()
    return shift


async def shifts_from(session: AsyncSession, since: datetime) -> list[tuple[OnCallShift, Counselor]]:
    rows = await session.execute(
        select(OnCallShift, Counselor)
        .join(Counselor, Counselor.id == OnCallShift.counselor_id)
        .where(OnCallShift.ends_at > since)
        .order_by(OnCallShift.starts_at, OnCallShift.id)
    )
    return [(shift, counselor) for shift, counselor in rows]


async def remove_shift(session: AsyncSession, shift_id: int) -> None:
    shift = await session.get(OnCallShift, shift_id)
    if shift is None:
        raise ValueError(f"no on-call shift {shift_id} (see `python -m bot oncall list`)")
    await session.delete(shift)


def local_datetime(text: str, zone: ZoneInfo) -> datetime:
    """'2026-11-24 18:00' in the clinic's time zone, as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time like 2026-11-24 18:00") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
