"""Read a clinic's .ics calendar (Google Calendar, Outlook/Exchange, Apple exports) into `Series`.

Every time ends up as naive local wall-clock time in one IANA zone per event, which is what `Series` wants:

- DTSTART with a TZID: that zone. IANA names, Windows names ("Eastern Standard Time"), Outlook display
  names ("(UTC-05:00) Eastern Time (US & Canada)") and "/vendor/Area/City" TZIDs are looked up by name;
  any other TZID with a VTIMEZONE block is matched to an IANA zone with the same UTC offsets over two
  years (the default zone if it qualifies); an unknown TZID without one is read as the default zone.
- Google's X-WR-TIMEZONE: its UTC and floating times are read in that zone (the x_wr_timezone package).
- UTC ("Z") or floating times otherwise: the default time zone.
- Every other time of the event (DTEND, EXDATE, RDATE, RECURRENCE-ID, overrides) is converted into the
  zone of its DTSTART; a floating one is taken as already in it.

Not sessions, so skipped without error: all-day events, events whose master is STATUS:CANCELLED, VTODO,
VJOURNAL, VALARM. An occurrence moved to "all day" counts as cancelled. RECURRENCE-ID overrides whose master
is missing become one event of their own per UID. Where a UID has several masters, or several overrides
of one occurrence, the highest SEQUENCE (then the later one in the file) wins. RANGE=THISANDFUTURE is not
supported: such an override changes only its own occurrence. No DTEND or DURATION means one hour.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import x_wr_timezone  # type: ignore[import-untyped]
from icalendar import Calendar, Component, vBroken
from icalendar.timezone import is_utc
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from bot.schedule.recurrence import Override, Series, to_local, validate_rrule, zone


@dataclass(frozen=True)
class ImportedEvent:
    uid: str
    title: str  # SUMMARY ("" if missing)
    location: str | None  # LOCATION
    url: str | None  # URL (or Google/Teams meeting link), else the first http(s) link in LOCATION/DESCRIPTION
    series: Series


class CalendarError(ValueError):
    """The calendar cannot be imported; the message says what to fix, for a clinic admin."""


DEFAULT_DURATION = timedelta(hours=1)
_LINK = re.compile(r"https?://[^\s<>\"'\\]+", re.IGNORECASE)
_LINK_TRAILING = ".,;:!?)]}>*"
# Properties that carry a meeting link in the big apps' exports, checked before LOCATION and DESCRIPTION.
_LINK_PROPERTIES = ("URL", "X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL")
_TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RRULE", "EXDATE", "RDATE", "RECURRENCE-ID")
_DISPLAY_NAME = re.compile(r"^\(UTC[^)]*\)\s*(.+?)(?:\s*\(US (?:&|and) Canada\))?$", re.IGNORECASE)
_ZONE_SAMPLES = 106  # weeks: two years of weekly samples to recognise a VTIMEZONE's rules


def parse_calendar(data: bytes, default_timezone: str) -> list[ImportedEvent]:
    """The sessions of an .ics file, in the order their events first appear.

    Raises CalendarError, never anything else, for input that cannot be imported.
    """
    if not data.strip():
        raise CalendarError("The calendar file is empty.")
    try:
        default = zone(default_timezone)
    except ValueError as exc:
        raise CalendarError(f"The clinic's time zone is not valid: {exc}") from exc
    text = _decode(data)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first_line.upper() != "BEGIN:VCALENDAR":
        found = (
            "binary data"
            if any(ord(ch) < 32 and ch != "\t" for ch in first_line)
            else repr(_shorten(first_line))
        )
        raise CalendarError(
            "This is not an iCalendar (.ics) file: it should start with BEGIN:VCALENDAR, "
            f"but it starts with {found}. Export the calendar as .ics and try again."
        )
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except Exception as exc:
        raise CalendarError(f"The calendar file is damaged{_locate_parse_error(text, exc)}: {exc}") from exc
    if not calendars:
        raise CalendarError("The calendar file is incomplete (no END:VCALENDAR): it may have been cut short.")

    reader = _Reader(default)
    lines = text.splitlines()
    events: list[tuple[Component, _Place]] = []
    vevent_lines = iter(_vevent_lines(lines))
    for calendar in calendars:
        for event in _standard(calendar, reader).walk("VEVENT"):
            events.append((event, _Place(event, next(vevent_lines, None), lines)))
    return reader.read(events)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # old Outlook exports


def _shorten(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _vevent_lines(lines: list[str]) -> Iterator[int]:
    for number, line in enumerate(lines, start=1):
        if line.strip().upper() == "BEGIN:VEVENT":
            yield number


def _locate_parse_error(text: str, exc: Exception) -> str:
    """' (line N)' for the line icalendar quotes in its message, where there is one."""
    quoted = re.findall(r"'([^']{3,})'", str(exc))
    for fragment in quoted:
        for number, line in enumerate(text.splitlines(), start=1):
            if fragment.strip() and fragment.strip() in line:
                return f" (line {number})"
    return ""


def _standard(calendar: Component, reader: _Reader) -> Component:
    """Apply Google's X-WR-TIMEZONE, where it names a zone we know (RFC 5545 has no such property)."""
    name = calendar.get("X-WR-TIMEZONE")
    tz = reader.named_zone(str(name)) if name is not None else None
    if tz is None:
        return calendar
    try:
        standard: Component = x_wr_timezone.to_standard(calendar, timezone=tz)
    except Exception as exc:
        raise CalendarError(
            f"The calendar's X-WR-TIMEZONE {str(name)!r} could not be applied: {exc}"
        ) from exc
    return standard


@dataclass
class _Raw:
    """One VEVENT, its times already in `tz` local wall-clock."""

    uid: str
    order: int
    sequence: int
    tz: ZoneInfo
    start: datetime
    duration: timedelta
    end: datetime | None  # only when DTEND or DURATION is given
    timed: bool
    cancelled: bool
    title: str
    location: str | None
    url: str | None
    recurrence_id: datetime | None = None
    recurrence_is_date: bool = False  # a DATE RECURRENCE-ID: the occurrence on that day, at the master's time
    rrule: str | None = None
    exdates: list[datetime] = field(default_factory=list)
    rdates: list[datetime] = field(default_factory=list)
    periods: list[tuple[datetime, datetime]] = field(default_factory=list)


class _Reader:
    def __init__(self, default: ZoneInfo) -> None:
        self.default = default
        self._matched: dict[int, ZoneInfo] = {}

    # --- time zones -------------------------------------------------------------------------------

    def named_zone(self, name: str) -> ZoneInfo | None:
        cleaned = name.strip().strip('"').strip("/")
        candidates = [cleaned, WINDOWS_TO_OLSON.get(cleaned, "")]
        display = _DISPLAY_NAME.match(cleaned)
        if display:  # Outlook's "(UTC-05:00) Eastern Time (US & Canada)" is "Eastern Standard Time"
            base = display.group(1).strip()
            candidates += [
                WINDOWS_TO_OLSON.get(base, ""),
                WINDOWS_TO_OLSON.get(f"{base.removesuffix(' Time')} Standard Time", ""),
            ]
        if name.strip().startswith("/"):  # "globally unique" TZIDs: /vendor/Area/City
            parts = cleaned.split("/")
            candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
        for candidate in candidates:
            if candidate and candidate.upper() != "UTC":
                try:
                    return ZoneInfo(candidate)
                except (ValueError, KeyError, OSError):
                    continue
        return None

    def zone_of(self, value: datetime, tzid: str | None) -> ZoneInfo:
        """The IANA zone whose wall clock an event starting at `value` (as icalendar decoded it) runs on."""
        tz = value.tzinfo
        if tz is None:  # floating, or a TZID icalendar did not know and had no VTIMEZONE for
            return (self.named_zone(tzid) if tzid else None) or self.default
        if is_utc(value):
            return self.default
        if isinstance(tz, ZoneInfo) and tz.key is not None:
            return self.named_zone(tz.key) or self.default
        if tzid and (named := self.named_zone(tzid)) is not None:
            return named
        return self._matching_zone(tz, value, tzid or "")

    def _matching_zone(self, tz: tzinfo, around: datetime, tzid: str) -> ZoneInfo:
        """The IANA zone with the same UTC offsets as a VTIMEZONE-defined zone, else the default.

        Several zones share a VTIMEZONE's rules (America/New_York, America/Detroit, America/Grand_Turk...):
        the default wins, then a Windows zone's main IANA zone whose names share most words with the TZID
        ("(UTC-05:00) Eastern Time (US & Canada)" -> "Eastern Standard Time" -> America/New_York).
        """
        cached = self._matched.get(id(tz))
        if cached is not None:
            return cached
        first = datetime(around.year, 1, 1, 12, tzinfo=UTC)
        samples = [first + timedelta(weeks=week) for week in range(_ZONE_SAMPLES)]
        wanted = [sample.astimezone(tz).utcoffset() for sample in samples]

        def same(candidate: ZoneInfo) -> bool:
            return all(
                sample.astimezone(candidate).utcoffset() == offset
                for sample, offset in zip(samples, wanted, strict=True)
            )

        found = self.default
        if not same(self.default):
            words = _words(tzid)
            mains = [name for name in _main_zones() if same(ZoneInfo(name))]
            if mains:
                found = ZoneInfo(min(mains, key=lambda name: (-len(words & _main_zones()[name]), name)))
            else:
                found = next(
                    (ZoneInfo(name) for name in _other_zones() if same(ZoneInfo(name))), self.default
                )
        self._matched[id(tz)] = found
        return found

    # --- events -----------------------------------------------------------------------------------

    def read(self, events: list[tuple[Component, _Place]]) -> list[ImportedEvent]:
        raws: list[_Raw] = []
        for order, (event, where) in enumerate(events):
            try:
                raws.append(self._raw(event, where, order))
            except CalendarError:
                raise
            except Exception as exc:
                raise CalendarError(f"{where()} could not be read: {exc}") from exc

        by_uid: dict[str, list[_Raw]] = {}
        for raw in raws:
            by_uid.setdefault(raw.uid, []).append(raw)
        imported: list[tuple[int, ImportedEvent]] = []
        for uid, group in by_uid.items():
            masters = [raw for raw in group if raw.recurrence_id is None]
            overrides = sorted((raw for raw in group if raw.recurrence_id is not None), key=_version)
            result: ImportedEvent | None
            if masters:
                master = max(masters, key=_version)
                if master.cancelled or not master.timed:
                    continue
                result = _series_event(uid, master, overrides)
            else:
                result = _orphans_event(uid, overrides)
            if result is not None:
                imported.append((min(raw.order for raw in group), result))
        return [event for _, event in sorted(imported, key=lambda pair: pair[0])]

    def _raw(self, event: Component, where: _Place, order: int) -> _Raw:
        for name, message in getattr(event, "errors", []):
            if str(name).upper() in _TIME_PROPERTIES:
                raise CalendarError(f"{where(str(name))} has an unreadable {name}: {message}")
        for name in _TIME_PROPERTIES:
            value = event.get(name)
            if isinstance(value, list) and name not in {"EXDATE", "RDATE"}:
                raise CalendarError(f"{where(name)} has more than one {name}, which is not supported")
            if isinstance(value, vBroken):
                raise CalendarError(f"{where(name)} has an unreadable {name}: {value!s}")

        start_prop = event.get("DTSTART")
        if start_prop is None:
            raise CalendarError(f"{where()} has no start time (DTSTART)")
        start_value = start_prop.dt
        title = _text(event, "SUMMARY") or ""
        location = _text(event, "LOCATION") or None
        raw = _Raw(
            uid=_uid(event),
            order=order,
            sequence=_sequence(event),
            tz=self.default,
            start=datetime.min,
            duration=DEFAULT_DURATION,
            end=None,
            timed=isinstance(start_value, datetime),
            cancelled=(_text(event, "STATUS") or "").strip().upper() == "CANCELLED",
            title=title,
            location=location,
            url=_link(event),
        )
        recurrence_prop = event.get("RECURRENCE-ID")
        if not raw.timed:
            if recurrence_prop is None:
                return raw  # all-day: the caller skips it
            # An occurrence moved to "all day" is no longer a session: read it as cancelled.
            raw.cancelled = True
            recurrence = recurrence_prop.dt
            raw.tz = (
                self.zone_of(recurrence, recurrence_prop.params.get("TZID")) if _timed(recurrence) else raw.tz
            )
            raw.recurrence_id = self._local_or_day(recurrence, raw.tz, None)
            raw.recurrence_is_date = not _timed(recurrence)
            raw.start = raw.recurrence_id
            return raw

        raw.tz = self.zone_of(start_value, start_prop.params.get("TZID"))
        raw.start = self._local(start_value, raw.tz)
        end_prop, duration_prop = event.get("DTEND"), event.get("DURATION")
        if end_prop is not None and _timed(end_prop.dt):
            raw.end = self._local(end_prop.dt, raw.tz)
        elif duration_prop is not None and isinstance(duration_prop.dt, timedelta):
            raw.end = raw.start + duration_prop.dt
        if raw.end is not None:
            if raw.end < raw.start:
                raise CalendarError(
                    f"{where('DTEND' if end_prop is not None else 'DURATION')} ends before it starts "
                    "(check DTEND or DURATION)"
                )
            raw.duration = raw.end - raw.start
        if recurrence_prop is not None:
            raw.recurrence_id = self._local_or_day(recurrence_prop.dt, raw.tz, raw.start)
            raw.recurrence_is_date = not _timed(recurrence_prop.dt)

        rules = event.get("RRULE")
        if rules is not None:
            raw.rrule = rules.to_ical().decode()
            try:
                validate_rrule(raw.rrule, raw.start.replace(tzinfo=raw.tz))
            except ValueError as exc:
                raise CalendarError(
                    f"{where('RRULE')} has a repeat rule (RRULE) that cannot be used: {exc}"
                ) from exc
        for value in _date_values(event.get("EXDATE")):
            raw.exdates.append(self._local_or_day(value, raw.tz, raw.start))
        for value in _date_values(event.get("RDATE")):
            if isinstance(value, tuple):  # PERIOD: (start, end) or (start, duration)
                period_start = self._local(value[0], raw.tz)
                period_end = (
                    period_start + value[1]
                    if isinstance(value[1], timedelta)
                    else self._local(value[1], raw.tz)
                )
                raw.periods.append((period_start, max(period_end, period_start)))
            else:
                raw.rdates.append(self._local_or_day(value, raw.tz, raw.start))
        return raw

    def _local(self, value: datetime, tz: ZoneInfo) -> datetime:
        return value.replace(tzinfo=None) if value.tzinfo is None else to_local(value, tz)

    def _local_or_day(self, value: date, tz: ZoneInfo, start: datetime | None) -> datetime:
        """A DATE in EXDATE/RDATE/RECURRENCE-ID of a timed event means the occurrence on that day."""
        if isinstance(value, datetime):
            return self._local(value, tz)
        return datetime.combine(value, start.time() if start is not None else datetime.min.time())


def _words(name: str) -> frozenset[str]:
    return frozenset(word for word in re.split(r"[^a-z]+", name.lower()) if len(word) > 2 and word != "utc")


@functools.cache
def _main_zones() -> dict[str, frozenset[str]]:
    """The main IANA zone of each Windows zone, with the words of its names (for matching a VTIMEZONE)."""
    known = available_timezones()
    zones: dict[str, frozenset[str]] = {}
    for windows, olson in WINDOWS_TO_OLSON.items():
        if olson in known:
            zones[olson] = zones.get(olson, frozenset()) | _words(windows) | _words(olson)
    return zones


@functools.cache
def _other_zones() -> tuple[str, ...]:
    """The remaining IANA zones, places first, Etc/GMT+5 and the like last."""
    rest = available_timezones() - set(_main_zones())
    return tuple(sorted(rest, key=lambda name: ("/" not in name or name.startswith("Etc/"), name)))


def _series_event(uid: str, master: _Raw, overrides: list[_Raw]) -> ImportedEvent:
    # A PERIOD RDATE is an extra occurrence with its own end; real overrides come after it, so they win.
    changes = [Override(original_start=s, start=s, end=e) for s, e in master.periods]
    changes += [_override(raw, master) for raw in overrides]
    series = Series(
        start=master.start,
        timezone=str(master.tz.key),
        duration=master.duration,
        rrule=master.rrule,
        exdates=tuple(sorted(set(master.exdates))),
        rdates=tuple(sorted(set(master.rdates))),
        overrides=tuple(changes),
    )
    return ImportedEvent(uid=uid, title=master.title, location=master.location, url=master.url, series=series)


def _orphans_event(uid: str, orphans: list[_Raw]) -> ImportedEvent | None:
    """Overrides without their master (a shared single occurrence, or a partial export): each one a session
    of its own, kept as overrides so an occurrence keeps its RECURRENCE-ID identity."""
    live = [raw for raw in orphans if not raw.cancelled and raw.timed]
    if not live:
        return None
    first = min(live, key=lambda raw: raw.recurrence_id or raw.start)
    tz = first.tz
    changes = []
    for raw in live:
        start = _move(raw.start, raw.tz, tz)
        changes.append(
            Override(
                original_start=_move(raw.recurrence_id or raw.start, raw.tz, tz),
                start=start,
                end=start + raw.duration,
                title=raw.title if raw.title != first.title else None,
                location=raw.location if raw.location != first.location else None,
            )
        )
    series = Series(
        start=_move(first.recurrence_id or first.start, first.tz, tz),
        timezone=str(tz.key),
        duration=first.duration,
        overrides=tuple(changes),
    )
    return ImportedEvent(uid=uid, title=first.title, location=first.location, url=first.url, series=series)


def _override(raw: _Raw, master: _Raw) -> Override:
    assert raw.recurrence_id is not None
    if raw.recurrence_is_date:
        original = datetime.combine(raw.recurrence_id.date(), master.start.time())
    else:
        original = _move(raw.recurrence_id, raw.tz, master.tz)
    if raw.cancelled or not raw.timed:
        return Override(original_start=original, start=None, end=None, cancelled=True)
    start = _move(raw.start, raw.tz, master.tz)
    return Override(
        original_start=original,
        start=start,
        end=start + raw.duration if raw.end is not None else None,
        title=raw.title if raw.title and raw.title != master.title else None,
        location=raw.location if raw.location and raw.location != master.location else None,
    )


def _move(local: datetime, source: ZoneInfo, target: ZoneInfo) -> datetime:
    """A naive local time in `source` as naive local time in `target` (a no-op for the same zone)."""
    if source.key == target.key:
        return local
    return to_local(local.replace(tzinfo=source), target)


def _version(raw: _Raw) -> tuple[int, int]:
    return (raw.sequence, raw.order)


def _timed(value: object) -> bool:
    return isinstance(value, datetime)


def _date_values(prop: Any) -> Iterator[Any]:
    """The values of an EXDATE/RDATE property, which may repeat and may each hold a comma-separated list."""
    if prop is None:
        return
    props: Iterable[Any] = prop if isinstance(prop, list) else [prop]
    for one in props:
        for value in one.dts:
            yield value.dt


def _text(event: Component, name: str) -> str | None:
    value = event.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value).strip()


def _uid(event: Component) -> str:
    uid = _text(event, "UID")
    if uid:
        return uid
    # RFC 5545 requires a UID, but hand-made files sometimes lack one: derive a stable one from the content.
    start = event.get("DTSTART")
    seed = f"{_text(event, 'SUMMARY')}|{start.to_ical().decode() if start is not None else ''}"
    return "generated-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def _sequence(event: Component) -> int:
    try:
        return int(str(event.get("SEQUENCE", 0)))
    except ValueError:
        return 0


def _link(event: Component) -> str | None:
    for name in _LINK_PROPERTIES:
        value = _text(event, name)
        if value and _LINK.match(value):
            return value
    for name in ("LOCATION", "DESCRIPTION"):
        match = _LINK.search(_text(event, name) or "")
        if match:
            return match.group(0).rstrip(_LINK_TRAILING)
    return None


@dataclass(frozen=True)
class _Place:
    """Where an event is in the file, for error messages: its UID, and the line of the property at fault
    (or of its BEGIN:VEVENT)."""

    event: Component
    begin: int | None
    lines: list[str]

    def __call__(self, prop: str | None = None) -> str:
        line = self.begin
        if prop is not None and self.begin is not None:
            line = self._property_line(prop.upper()) or self.begin
        title = _text(self.event, "SUMMARY")
        uid = _text(self.event, "UID")
        parts = [f"UID {uid}" if uid else "no UID"]
        if line is not None:
            parts.append(f"line {line}")
        label = f"Event {_shorten(title)!r}" if title else "Event"
        return f"{label} ({', '.join(parts)})"

    def _property_line(self, prop: str) -> int | None:
        assert self.begin is not None
        for number in range(self.begin + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            name = re.split(r"[;:]", line, maxsplit=1)[0].strip().upper()
            if name in {"END", "BEGIN"} and line.strip().upper().endswith("VEVENT"):
                return None
            if name == prop:
                return number
        return None
