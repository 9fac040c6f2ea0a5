"""Expand a recurring program session into concrete occurrences.

A series is expanded in LOCAL wall-clock time (RFC 5545 semantics for a DTSTART with a TZID), so an 18:00
group stays at 18:00 local on both sides of a daylight-saving change; only then is each occurrence pinned
to an instant. A local time that does not exist (spring-forward gap) moves forward by the gap (02:30 ->
03:30); an ambiguous one (fall-back) takes the first, earlier instant (fold=0). An occurrence ends at its
start plus the duration on the wall clock too (like a DTEND), moved along with a start that fell in a gap.

Like RFC 5545 and the big calendar apps, DTSTART itself is always an occurrence, even when it does not match
the rule. An EXDATE wins over everything (an override of an excluded occurrence is dropped too); a cancelled
override removes its occurrence; any other override is honoured even when its original start is not an
occurrence of the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr


@dataclass(frozen=True)
class Override:
    """One occurrence changed or cancelled (an iCalendar RECURRENCE-ID)."""

    original_start: datetime  # naive LOCAL wall-clock time of the occurrence it replaces
    start: datetime | None  # naive local new start (None = unchanged time)
    end: datetime | None  # naive local new end (None = start + series duration)
    cancelled: bool = False
    title: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class Series:
    start: datetime  # naive LOCAL wall-clock of the first occurrence (DTSTART)
    timezone: str  # IANA name, e.g. "America/New_York"
    duration: timedelta
    rrule: str | None = None  # RFC 5545 RRULE value without "RRULE:"
    exdates: tuple[datetime, ...] = ()  # naive local starts removed
    rdates: tuple[datetime, ...] = ()  # naive local starts added
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Occurrence:
    original_start: datetime  # aware UTC: the occurrence's identity (stable even if an override moves it)
    start: datetime  # aware UTC
    end: datetime  # aware UTC
    title: str | None  # from an override, else None (the caller uses the series title)
    location: str | None


# Base occurrences are searched in local wall-clock time a day either side of the window: more than any UTC
# offset change, so converting the window to local time can never lose an occurrence at its edges.
_LOCAL_MARGIN = timedelta(days=1)
_FREQ_PERIOD = {
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}
_FREQS = frozenset({"YEARLY", "MONTHLY", *_FREQ_PERIOD})
_UNTIL = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")
# How far validate_rrule looks for a first occurrence: dateutil can search for seconds before giving up
# on a rule that matches nothing (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30).
_VALIDATE_HORIZON = timedelta(days=3 * 366)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError (not KeyError) when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'America/New_York'") from exc


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """Pin a naive local wall-clock time to an aware UTC instant.

    fold=0 does both product rules at once (PEP 495): an ambiguous time takes its first instant, and a
    time in a gap is read with the offset in force before it, which lands one gap-length later.
    """
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall-clock time of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got naive {instant.isoformat()}")
    return instant.astimezone(tz).replace(tzinfo=None)


def _naive_local(value: datetime, tz: ZoneInfo) -> datetime:
    return value if value.tzinfo is None else to_local(value, tz)


def _parse_rule(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text[:6].upper() == "RRULE:":
        text = text[6:]
    if not text:
        raise ValueError("the repeat rule is empty")
    if any(ch in text for ch in "\r\n:"):
        raise ValueError(f"the repeat rule {rule!r} must be a single RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO")
    parts: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().upper()
        if not sep or not name or not value.strip():
            raise ValueError(f"the repeat rule {rule!r} has a malformed part {part!r} (expected NAME=VALUE)")
        if name in parts:
            raise ValueError(f"the repeat rule {rule!r} gives {name} twice")
        parts[name] = value.strip().upper()
    freq = parts.get("FREQ")
    if freq is None:
        raise ValueError(f"the repeat rule {rule!r} has no FREQ (e.g. FREQ=WEEKLY)")
    if freq not in _FREQS:
        raise ValueError(f"the repeat rule {rule!r} has an unknown FREQ {freq!r}")
    for name in ("COUNT", "INTERVAL"):
        if name in parts and (not parts[name].isdecimal() or int(parts[name]) < 1):
            raise ValueError(f"the repeat rule {rule!r} needs a positive whole number for {name}")
    if "UNTIL" in parts and not _UNTIL.match(parts["UNTIL"]):
        raise ValueError(
            f"the repeat rule {rule!r} has a malformed UNTIL {parts['UNTIL']!r} "
            "(expected YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ)"
        )
    return parts


def _local_until(value: str, tz: ZoneInfo) -> str:
    """UNTIL as naive local wall-clock, since dateutil refuses an aware UNTIL with a naive DTSTART."""
    match = _UNTIL.match(value)
    assert match is not None  # checked by _parse_rule
    year, month, day, hour, minute, second, utc = match.groups()
    if hour is None:
        # A DATE UNTIL with a DATE-TIME DTSTART is non-conforming but common; read it as the whole day.
        until = datetime(int(year), int(month), int(day), 23, 59, 59)
    else:
        until = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        if utc:
            until = to_local(until.replace(tzinfo=UTC), tz)
    return until.strftime("%Y%m%dT%H%M%S")


def _build_rule(parts: dict[str, str], start: datetime, tz: ZoneInfo) -> rrule:
    text_parts = dict(parts)
    if "UNTIL" in text_parts:
        text_parts["UNTIL"] = _local_until(text_parts["UNTIL"], tz)
    text = ";".join(f"{name}={value}" for name, value in text_parts.items())
    built = rrulestr(text, dtstart=start)
    assert isinstance(built, rrule)
    return built


def _fast_forward(parts: dict[str, str], start: datetime, lo: datetime) -> datetime:
    """A later DTSTART that yields the same occurrences from `lo` on, so a long-running series is not walked
    from its first week on every call.

    Only safe where the rule's periods are fixed lengths (DAILY and shorter, WEEKLY) and there is no COUNT
    (which counts from the real start): moving by whole periods keeps the weekday, time of day and period
    alignment that dateutil derives from DTSTART.
    """
    period = _FREQ_PERIOD.get(parts["FREQ"])
    if period is None or "COUNT" in parts:
        return start
    period *= int(parts.get("INTERVAL", "1"))
    periods = (lo - start) // period - 1
    return start + periods * period if periods > 0 else start


def validate_rrule(rule: str, start: datetime) -> None:
    """Raise ValueError with a message a clinic admin can act on when `rule` is not a usable RRULE value.

    `start` is the series' first start: naive local, or aware in its zone (which a UTC UNTIL is then
    compared in; a naive start is taken as UTC for that).
    """
    parts = _parse_rule(rule)
    tz = start.tzinfo if isinstance(start.tzinfo, ZoneInfo) else ZoneInfo("UTC")
    local_start = _naive_local(start, tz)
    try:
        built = _build_rule(parts, local_start, tz)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the repeat rule {rule!r} is not valid: {exc}") from exc
    if not built.between(local_start, local_start + _VALIDATE_HORIZON, inc=True):
        raise ValueError(
            f"the repeat rule {rule!r} produces no sessions from {local_start:%Y-%m-%d %H:%M} on "
            "(check UNTIL and the BY... parts)"
        )


def _base_starts(series: Series, tz: ZoneInfo, lo: datetime, hi: datetime) -> set[datetime]:
    """Naive local starts in [lo, hi] from DTSTART, the rule and the rdates, less the exdates."""
    start = _naive_local(series.start, tz)
    starts = {start} if lo <= start <= hi else set()
    if series.rrule is not None and start <= hi:
        parts = _parse_rule(series.rrule)
        built = _build_rule(parts, _fast_forward(parts, start, lo), tz)
        starts.update(built.between(lo, hi, inc=True))
    for rdate in series.rdates:
        local = _naive_local(rdate, tz)
        if lo <= local <= hi:
            starts.add(local)
    return starts - {_naive_local(exdate, tz) for exdate in series.exdates}


def occurrences(series: Series, window_start: datetime, window_end: datetime) -> list[Occurrence]:
    """Occurrences whose (possibly moved) start lies in [window_start, window_end), sorted by start."""
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("the window must be given as aware datetimes")
    tz = zone(series.timezone)
    lo = to_local(window_start, tz) - _LOCAL_MARGIN
    hi = to_local(window_end, tz) + _LOCAL_MARGIN
    exdates = {_naive_local(exdate, tz) for exdate in series.exdates}
    overrides = {_naive_local(o.original_start, tz): o for o in series.overrides}

    result: list[Occurrence] = []

    def add(original: datetime, start: datetime, end: datetime, title: str | None, where: str | None) -> None:
        start_utc = to_utc(start, tz)
        if window_start <= start_utc < window_end:
            # The end is on the wall clock too, moved along with a start that fell in a spring-forward gap
            # (so a 02:30-03:30 session becomes 03:30-04:30, not 03:30-03:30).
            gap_shift = to_local(start_utc, tz) - start
            end_utc = max(to_utc(end + gap_shift, tz), start_utc)
            result.append(Occurrence(to_utc(original, tz), start_utc, end_utc, title, where))

    for local in _base_starts(series, tz, lo, hi):
        if local not in overrides:
            add(local, local, local + series.duration, None, None)
    # Every override is looked at, wherever it came from, so one moved into the window from far outside
    # it (or out of it) is handled without widening the search.
    for original, override in overrides.items():
        if override.cancelled or original in exdates:
            continue
        start = original if override.start is None else _naive_local(override.start, tz)
        end = start + series.duration if override.end is None else _naive_local(override.end, tz)
        add(original, start, end, override.title, override.location)
    result.sort(key=lambda occurrence: (occurrence.start, occurrence.original_start))
    return result
