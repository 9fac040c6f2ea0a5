"""Clock values from settings: the clinic's office hours, the days it is closed, and reminder offsets,
parsed from text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class OfficeHours:
    """Weekdays (0 = Monday) and a daily span; the end is exclusive, and an end before the start spans
    midnight. `closed`: dates (in the clinic's zone) the office does not open, holidays say; an overnight
    span belongs to the date it starts on."""

    days: frozenset[int]
    start: time
    end: time
    closed: frozenset[date] = frozenset()

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
            return self._opens_on(local.date()) and self.start <= clock < self.end
        # Overnight office hours: after the start on an office day, or before the end the morning after.
        if clock >= self.start:
            return self._opens_on(local.date())
        return clock < self.end and self._opens_on(local.date() - timedelta(days=1))

    def next_opening(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The next time the office opens after `moment` (UTC-aware, like `moment`), past closed days."""
        day = moment.astimezone(zone).date()
        for offset in range(8 + len(self.closed)):
            opening = datetime.combine(day + timedelta(days=offset), self.start, tzinfo=zone)
            if opening > moment and self._opens_on(opening.date()):
                return opening.astimezone(moment.tzinfo)
        raise AssertionError("office hours name at least one weekday")

    def _opens_on(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.closed


def latest_at(clock: time, zone: ZoneInfo, now: datetime) -> datetime:
    """The latest time at or before `now` that clocks in `zone` showed `clock`: today's, or yesterday's before
    today's comes round (a clock time that does not exist, in a DST gap, resolves forwards, as zoneinfo does
    with fold=0)."""
    here = now.astimezone(zone)
    day = here.date() if here.time() >= clock else here.date() - timedelta(days=1)
    return datetime.combine(day, clock, tzinfo=zone)


def parse_closed_days(text: str) -> frozenset[date]:
    """Dates the office is closed, from text like "2026-12-25, 2027-01-01" (blank: none). ValueError
    naming the bad part otherwise."""
    days: set[date] = set()
    for raw in text.replace(";", ",").split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
                raise ValueError
            days.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(
                f"{part!r} is not a date: write the days the office is closed as YYYY-MM-DD, "
                "separated by commas, such as 2026-12-25,2027-01-01"
            ) from None
    return frozenset(days)


MAX_OFFSET = timedelta(days=14)
_OFFSET = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_offsets(text: str) -> tuple[timedelta, ...]:
    """Reminder offsets from text like "24h,1h" or "1d, 90m, 30m" (also "1h30m"): sorted longest first,
    without repeats. ValueError naming the bad part otherwise."""
    offsets: set[timedelta] = set()
    for raw in text.split(","):
        part = re.sub(r"\s+", "", raw).lower()
        if not part:
            continue
        match = _OFFSET.match(part)
        if match is None or not any(match.groups()):
            if part.startswith("-"):
                raise ValueError(
                    f"reminder offset {raw.strip()!r} is negative: give the time before the session"
                )
            raise ValueError(
                f"reminder offset {raw.strip()!r} is not understood: use e.g. 24h, 1d, 90m or 1h30m"
            )
        days, hours, minutes = (int(group or 0) for group in match.groups())
        offset = timedelta(days=days, hours=hours, minutes=minutes)
        if offset <= timedelta(0):
            raise ValueError(f"reminder offset {raw.strip()!r} is zero")
        if offset > MAX_OFFSET:
            raise ValueError(f"reminder offset {raw.strip()!r} is more than 14 days before the session")
        offsets.add(offset)
    if not offsets:
        raise ValueError("no reminder offsets given: use e.g. 24h,1h")
    return tuple(sorted(offsets, reverse=True))
