from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import x_wr_timezone

from bot.schedule.ical_import import CalendarError, ImportedEvent, parse_calendar
from bot.schedule.recurrence import Occurrence, Override, occurrences

DATA = Path(__file__).parent / "data"
GOOGLE = (DATA / "iop_calendar.ics").read_bytes()
OUTLOOK = (DATA / "outlook_calendar.ics").read_bytes()
NY = "America/New_York"
LA = "America/Los_Angeles"
CHICAGO = "America/Chicago"
GROUP_UID = "4ht9c2l0v7q1m3p8s5e6k2j0ab@google.com"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def calendar(*lines: str, head: tuple[str, ...] = ()) -> bytes:
    return "\r\n".join(("BEGIN:VCALENDAR", "VERSION:2.0", *head, *lines, "END:VCALENDAR", "")).encode()


def vevent(*lines: str) -> tuple[str, ...]:
    return ("BEGIN:VEVENT", *lines, "END:VEVENT")


def only(data: bytes, default: str = CHICAGO) -> ImportedEvent:
    [event] = parse_calendar(data, default)
    return event


def by_title(events: list[ImportedEvent]) -> dict[str, ImportedEvent]:
    return {event.title: event for event in events}


def expand(event: ImportedEvent, start: datetime, end: datetime) -> list[Occurrence]:
    return occurrences(event.series, start, end)


# --- the Google Calendar export -----------------------------------------------------------------------


def test_google_export_events() -> None:
    events = parse_calendar(GOOGLE, CHICAGO)

    # "Clinic closed" is all-day: not a session, skipped. The VALARM is ignored.
    assert [event.title for event in events] == [
        "Evening IOP group",
        "Medication management",
        "Family therapy",
    ]
    assert all(event.series.timezone == NY for event in events)


def test_google_group_series() -> None:
    group = by_title(parse_calendar(GOOGLE, CHICAGO))["Evening IOP group"]

    assert group.uid == GROUP_UID
    assert group.location == "Riverside Recovery Center, Group Room B, 120 Main St, Springfield, NY 12345"
    assert group.url is None
    series = group.series
    assert series.start == datetime(2027, 3, 1, 18)
    assert series.duration == timedelta(hours=3)
    assert series.rrule is not None and "UNTIL=20271217T045959Z" in series.rrule
    assert series.exdates == (datetime(2027, 7, 5, 18), datetime(2027, 11, 25, 18))
    assert series.rdates == ()
    assert series.overrides == (
        Override(
            original_start=datetime(2027, 10, 20, 18),
            start=datetime(2027, 10, 19, 17),
            end=datetime(2027, 10, 19, 20),
            location="Community Hall, 45 Oak Ave, Springfield, NY 12345",
        ),
        Override(original_start=datetime(2027, 11, 11, 18), start=None, end=None, cancelled=True),
    )


def test_google_group_moved_occurrence() -> None:
    group = by_title(parse_calendar(GOOGLE, CHICAGO))["Evening IOP group"]

    week = expand(group, utc(2027, 10, 18), utc(2027, 10, 25))

    assert [local(o.start, NY) for o in week] == [
        datetime(2027, 10, 18, 18),
        datetime(2027, 10, 19, 17),
        datetime(2027, 10, 21, 18),
    ]
    assert week[1].original_start == utc(2027, 10, 20, 22)
    assert week[1].location == "Community Hall, 45 Oak Ave, Springfield, NY 12345"
    assert week[1].end - week[1].start == timedelta(hours=3)


def test_google_group_cancelled_occurrence_and_fall_back() -> None:
    group = by_title(parse_calendar(GOOGLE, CHICAGO))["Evening IOP group"]

    week = expand(group, utc(2027, 11, 8), utc(2027, 11, 15))

    assert [o.start for o in week] == [
        utc(2027, 11, 8, 23),
        utc(2027, 11, 10, 23),
    ]  # 18:00 EST; 11th cancelled


def test_google_group_holiday_exdate_and_until() -> None:
    group = by_title(parse_calendar(GOOGLE, CHICAGO))["Evening IOP group"]

    thanksgiving_week = expand(group, utc(2027, 11, 22), utc(2027, 11, 29))
    end_of_year = expand(group, utc(2027, 12, 13), utc(2028, 1, 31))

    assert [local(o.start, NY).day for o in thanksgiving_week] == [22, 24]
    assert [local(o.start, NY).day for o in end_of_year] == [
        13,
        15,
        16,
    ]  # UNTIL is Thursday 16th 23:59:59 EST


def test_google_medication_management_telehealth_link() -> None:
    medication = by_title(parse_calendar(GOOGLE, CHICAGO))["Medication management"]

    # The link is in a folded, HTML DESCRIPTION.
    assert medication.url == "https://telehealth.example-clinic.org/visit/med-mgmt-4471?pwd=Zk3q9"
    assert medication.location == "Telehealth (video)"
    sessions = expand(medication, utc(2027, 1, 1), utc(2028, 1, 1))
    assert len(sessions) == 12
    assert {local(o.start, NY).hour for o in sessions} == {10}
    assert sessions[1].start == utc(2027, 3, 9, 15)
    assert sessions[2].start == utc(2027, 3, 16, 14)
    assert all(o.end - o.start == timedelta(minutes=30) for o in sessions)


def test_google_one_off_in_utc_uses_the_calendar_time_zone() -> None:
    family = by_title(parse_calendar(GOOGLE, CHICAGO))["Family therapy"]

    assert family.series.start == datetime(2027, 11, 6, 14)  # 18:00Z in X-WR-TIMEZONE America/New_York
    assert family.series.rrule is None
    assert family.series.duration == timedelta(minutes=90)
    assert [o.start for o in expand(family, utc(2027, 1, 1), utc(2028, 1, 1))] == [utc(2027, 11, 6, 18)]


# --- the Outlook export -------------------------------------------------------------------------------


def test_outlook_export() -> None:
    events = parse_calendar(OUTLOOK, CHICAGO)

    assert [event.title for event in events] == ["Evening IOP group (Pacific)", "Intake"]  # VTODO ignored
    group, intake = events
    assert group.series.timezone == LA  # TZID "Pacific Standard Time"
    assert group.series.duration == timedelta(hours=3)  # DURATION:PT3H
    assert group.series.exdates == (datetime(2027, 3, 11, 18), datetime(2027, 3, 18, 18))  # one comma list
    assert group.location == "Suite 200, 900 Harbor Blvd"
    assert intake.series.timezone == LA
    assert intake.series.duration == timedelta(hours=1)  # neither DTEND nor DURATION
    assert (
        intake.url
        == "https://teams.example.com/l/meetup-join/19%3ameeting_abc123%40thread.v2/0?context=%7b%7d"
    )


def test_outlook_series_across_spring_forward() -> None:
    group = parse_calendar(OUTLOOK, CHICAGO)[0]

    result = expand(group, utc(2027, 3, 8), utc(2027, 3, 27))

    assert [(local(o.start, LA), local(o.end, LA)) for o in result] == [
        (datetime(2027, 3, 9, 18), datetime(2027, 3, 9, 21)),
        (datetime(2027, 3, 16, 19), datetime(2027, 3, 16, 21)),  # moved, with its own DURATION
        (datetime(2027, 3, 23, 18), datetime(2027, 3, 23, 21)),
        (datetime(2027, 3, 25, 18), datetime(2027, 3, 25, 21)),
    ]
    assert result[0].start == utc(2027, 3, 10, 2)
    assert result[2].start == utc(2027, 3, 24, 1)
    assert result[1].original_start == utc(2027, 3, 17, 1)
    last = expand(group, utc(2027, 4, 26), utc(2027, 6, 1))
    assert [local(o.start, LA).day for o in last] == [27, 29]  # UNTIL 2027-04-30 01:00Z is 29th 18:00 PDT


@pytest.mark.parametrize("data", [GOOGLE, OUTLOOK], ids=["google", "outlook"])
def test_agrees_with_recurring_ical_events(data: bytes) -> None:
    """An independent expansion of the same files finds the same sessions."""
    standard = x_wr_timezone.to_standard(icalendar.Calendar.from_ical(data))
    theirs = {
        (str(event["UID"]), event["DTSTART"].dt.astimezone(UTC))
        for event in recurring_ical_events.of(standard).between(datetime(2027, 1, 1), datetime(2028, 1, 1))
        if isinstance(event["DTSTART"].dt, datetime) and str(event.get("STATUS", "")) != "CANCELLED"
    }
    ours = {
        (event.uid, occurrence.start)
        for event in parse_calendar(data, CHICAGO)
        for occurrence in expand(event, utc(2026, 12, 1), utc(2028, 2, 1))
    }

    assert ours == theirs
    assert len(ours) > 15


# --- time zones ---------------------------------------------------------------------------------------

EASTERN_VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    "TZID:{tzid}",
    "BEGIN:STANDARD",
    "DTSTART:16011104T020000",
    "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:16010311T020000",
    "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
)


def eastern_event(tzid: str) -> bytes:
    quoted = f'"{tzid}"' if any(ch in tzid for ch in ",:;") else tzid
    return calendar(
        *(line.format(tzid=tzid) for line in EASTERN_VTIMEZONE),
        *vevent("UID:tz@x", "SUMMARY:Group", f"DTSTART;TZID={quoted}:20270301T180000", "RRULE:FREQ=WEEKLY"),
    )


@pytest.mark.parametrize(
    ("tzid", "default", "expected"),
    [
        ("America/New_York", CHICAGO, NY),
        ("Eastern Standard Time", CHICAGO, NY),
        ("(UTC-05:00) Eastern Time (US & Canada)", CHICAGO, NY),
        ("/citadel.org/20190101_1/America/New_York", CHICAGO, NY),
        (
            "Custom Eastern",
            "America/Toronto",
            "America/Toronto",
        ),  # the default wins when it has the same rules
        ("Custom Eastern", "Europe/Berlin", None),  # else some zone with the same rules
    ],
)
def test_vtimezone_tzids(tzid: str, default: str, expected: str | None) -> None:
    event = only(eastern_event(tzid), default)

    if expected is not None:
        assert event.series.timezone == expected
    assert event.series.start == datetime(2027, 3, 1, 18)
    result = expand(event, utc(2027, 3, 8), utc(2027, 3, 16))
    assert [o.start for o in result] == [utc(2027, 3, 8, 23), utc(2027, 3, 15, 22)]


def test_windows_tzid_without_vtimezone() -> None:
    event = only(calendar(*vevent("UID:w@x", "DTSTART;TZID=Pacific Standard Time:20270301T180000")))

    assert event.series.timezone == LA
    assert event.title == ""


def test_floating_and_unknown_tzid_use_the_default() -> None:
    floating = only(calendar(*vevent("UID:f@x", "DTSTART:20270301T180000")), CHICAGO)
    unknown = only(calendar(*vevent("UID:u@x", "DTSTART;TZID=Clinic Time:20270301T180000")), CHICAGO)

    for event in (floating, unknown):
        assert (event.series.timezone, event.series.start) == (CHICAGO, datetime(2027, 3, 1, 18))


def test_utc_times_without_calendar_zone_become_default_local_time() -> None:
    event = only(
        calendar(
            *vevent(
                "UID:z@x",
                "DTSTART:20270302T000000Z",
                "DTEND:20270302T030000Z",
                "RRULE:FREQ=WEEKLY;COUNT=3",
                "EXDATE:20270309T000000Z",
            )
        ),
        CHICAGO,
    )

    assert event.series.timezone == CHICAGO
    assert event.series.start == datetime(2027, 3, 1, 18)
    assert event.series.exdates == (datetime(2027, 3, 8, 18),)
    # Expanded on Chicago's wall clock, so the third week is 18:00 CDT (23:00Z), not 19:00 CDT.
    assert [o.start for o in expand(event, utc(2027, 3, 1), utc(2027, 4, 1))] == [
        utc(2027, 3, 2),
        utc(2027, 3, 15, 23),
    ]


def test_x_wr_timezone_with_utc_recurring_event() -> None:
    event = only(
        calendar(
            *vevent(
                "UID:g@x", "DTSTART:20270301T230000Z", "DTEND:20270302T020000Z", "RRULE:FREQ=WEEKLY;COUNT=3"
            ),
            head=("X-WR-TIMEZONE:America/New_York",),
        ),
        LA,
    )

    assert (event.series.timezone, event.series.start) == (NY, datetime(2027, 3, 1, 18))
    assert [local(o.start, NY).hour for o in expand(event, utc(2027, 3, 1), utc(2027, 4, 1))] == [18, 18, 18]


# --- other real-world shapes --------------------------------------------------------------------------


def test_exdate_and_rdate_forms() -> None:
    event = only(
        calendar(
            *vevent(
                "UID:r@x",
                "DTSTART;TZID=America/Chicago:20270301T180000",
                "DTEND;TZID=America/Chicago:20270301T200000",
                "RRULE:FREQ=DAILY;COUNT=5",
                "EXDATE;TZID=America/Chicago:20270302T180000,20270303T180000",
                "EXDATE;VALUE=DATE:20270304",
                "RDATE;TZID=America/Chicago:20270310T180000,20270311T180000",
                "RDATE;VALUE=PERIOD:20270312T150000Z/PT30M",
            )
        )
    )

    assert event.series.exdates == (
        datetime(2027, 3, 2, 18),
        datetime(2027, 3, 3, 18),
        datetime(2027, 3, 4, 18),
    )
    assert event.series.rdates == (datetime(2027, 3, 10, 18), datetime(2027, 3, 11, 18))
    result = expand(event, utc(2027, 3, 1), utc(2027, 4, 1))
    assert [local(o.start, CHICAGO) for o in result] == [
        datetime(2027, 3, 1, 18),
        datetime(2027, 3, 5, 18),
        datetime(2027, 3, 10, 18),
        datetime(2027, 3, 11, 18),
        datetime(2027, 3, 12, 9),
    ]
    assert result[-1].end - result[-1].start == timedelta(minutes=30)


def test_override_with_changed_title_and_no_end() -> None:
    event = only(
        calendar(
            *vevent(
                "UID:o@x",
                "SUMMARY:Group",
                "DTSTART:20270301T180000",
                "DTEND:20270301T210000",
                "RRULE:FREQ=DAILY",
            ),
            *vevent(
                "UID:o@x",
                "SUMMARY:Group – guest speaker",
                "RECURRENCE-ID:20270302T180000",
                "DTSTART:20270302T180000",
            ),
        )
    )

    [override] = event.series.overrides
    assert override == Override(
        original_start=datetime(2027, 3, 2, 18),
        start=datetime(2027, 3, 2, 18),
        end=None,
        title="Group – guest speaker",
    )
    [occurrence] = expand(event, utc(2027, 3, 2, 12), utc(2027, 3, 3, 12))
    assert occurrence.title == "Group – guest speaker"
    assert occurrence.end - occurrence.start == timedelta(hours=3)


def test_newest_override_wins() -> None:
    event = only(
        calendar(
            *vevent("UID:s@x", "DTSTART:20270301T180000", "RRULE:FREQ=DAILY"),
            *vevent("UID:s@x", "SEQUENCE:3", "RECURRENCE-ID:20270302T180000", "DTSTART:20270302T190000"),
            *vevent("UID:s@x", "SEQUENCE:2", "RECURRENCE-ID:20270302T180000", "DTSTART:20270302T170000"),
        )
    )

    [occurrence] = expand(event, utc(2027, 3, 2, 12), utc(2027, 3, 3, 12))
    assert local(occurrence.start, CHICAGO) == datetime(2027, 3, 2, 19)


def test_cancelled_master_is_skipped_with_its_overrides() -> None:
    events = parse_calendar(
        calendar(
            *vevent("UID:c@x", "STATUS:CANCELLED", "DTSTART:20270301T180000", "RRULE:FREQ=DAILY"),
            *vevent("UID:c@x", "RECURRENCE-ID:20270302T180000", "DTSTART:20270302T190000"),
            *vevent("UID:k@x", "SUMMARY:Kept", "DTSTART:20270301T180000"),
        ),
        CHICAGO,
    )

    assert [event.uid for event in events] == ["k@x"]


def test_overrides_without_master_are_standalone_events() -> None:
    event = only(
        calendar(
            *vevent(
                "UID:lonely@x",
                "SUMMARY:Group",
                "RECURRENCE-ID:20270308T180000",
                "DTSTART:20270309T180000",
                "DTEND:20270309T193000",
            ),
            *vevent(
                "UID:lonely@x", "SUMMARY:Group", "RECURRENCE-ID:20270315T180000", "DTSTART:20270315T180000"
            ),
            *vevent(
                "UID:lonely@x", "STATUS:CANCELLED", "RECURRENCE-ID:20270322T180000", "DTSTART:20270322T180000"
            ),
        )
    )

    assert event.title == "Group"
    result = expand(event, utc(2027, 1, 1), utc(2028, 1, 1))
    assert [(local(o.start, CHICAGO), o.end - o.start) for o in result] == [
        (datetime(2027, 3, 9, 18), timedelta(minutes=90)),
        (datetime(2027, 3, 15, 18), timedelta(hours=1)),
    ]
    assert local(result[0].original_start, CHICAGO) == datetime(2027, 3, 8, 18)


def test_all_day_events_and_other_components_are_skipped() -> None:
    events = parse_calendar(
        calendar(
            *vevent("UID:a@x", "SUMMARY:Closed", "DTSTART;VALUE=DATE:20271125", "RRULE:FREQ=YEARLY"),
            "BEGIN:VTODO",
            "UID:t@x",
            "DTSTART:20270301T180000",
            "END:VTODO",
            "BEGIN:VJOURNAL",
            "UID:j@x",
            "DTSTART:20270301T180000",
            "END:VJOURNAL",
        ),
        CHICAGO,
    )

    assert events == []


def test_empty_calendar_has_no_events() -> None:
    assert parse_calendar(calendar(), CHICAGO) == []


def test_links() -> None:
    with_url = only(
        calendar(*vevent("UID:1@x", "DTSTART:20270301T180000", "URL:https://clinic.example/join/1"))
    )
    in_location = only(
        calendar(
            *vevent("UID:2@x", "DTSTART:20270301T180000", "LOCATION:Zoom: https://zoom.example/j/123, pw 9")
        )
    )
    google_meet = only(
        calendar(
            *vevent(
                "UID:3@x", "DTSTART:20270301T180000", "X-GOOGLE-CONFERENCE:https://meet.example/abc-defg-hij"
            )
        )
    )
    none = only(
        calendar(*vevent("UID:4@x", "DTSTART:20270301T180000", "DESCRIPTION:Room 4. Call us at 555."))
    )

    assert with_url.url == "https://clinic.example/join/1"
    assert in_location.url == "https://zoom.example/j/123"
    assert google_meet.url == "https://meet.example/abc-defg-hij"
    assert none.url is None


def test_event_without_uid_gets_a_stable_one() -> None:
    data = calendar(*vevent("SUMMARY:Walk-in group", "DTSTART:20270301T180000"))

    assert only(data).uid == only(data).uid
    assert only(data).uid.startswith("generated-")


def test_byte_order_mark_lf_line_ends_and_windows_1252() -> None:
    data = calendar(*vevent("UID:b@x", "SUMMARY:Gruppe für Angehörige", "DTSTART:20270301T180000"))

    assert only(b"\xef\xbb\xbf" + data.replace(b"\r\n", b"\n")).title == "Gruppe für Angehörige"
    assert only(data.decode().encode("cp1252")).title == "Gruppe für Angehörige"


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (b"hello world\nthis is not a calendar", "not an iCalendar"),
        (b"<html><body>Sign in to continue</body></html>", "not an iCalendar"),
        (bytes(range(256)) * 4, "binary data"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20270301T180000\r\n", "cut short"),
        (b"BEGIN:VCALENDAR\r\nthis line is not a property\r\nEND:VCALENDAR\r\n", "line 2"),
    ],
)
def test_not_a_calendar(data: bytes, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_calendar(data, CHICAGO)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("UID:no-start@x", "SUMMARY:Group"), r"'Group' \(UID no-start@x, line 3\) has no start time"),
        (("UID:d@x", "DTSTART:next tuesday"), r"UID d@x, line 6\) has an unreadable DTSTART"),
        (("UID:r@x", "DTSTART:20270301T180000", "RRULE:FREQ=WEEKLY;BYDAY=XX"), r"UID r@x, line 7\).*RRULE"),
        (("UID:r@x", "DTSTART:20270301T180000", "RRULE:FREQ=FORTNIGHTLY"), r"UID r@x, line 7\).*RRULE"),
        (("UID:i@x", "DTSTART:20270301T180000", "RRULE:FREQ=WEEKLY;INTERVAL=0"), "INTERVAL"),
        (("UID:n@x", "DTSTART:20270301T180000", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"), "no sessions"),
        (("UID:e@x", "DTSTART:20270301T180000", "EXDATE:soon"), r"line 7\) has an unreadable EXDATE"),
        (("UID:b@x", "DTSTART:20270301T180000", "DTEND:20270301T170000"), r"line 7\) ends before it starts"),
        (
            ("UID:t@x", "DTSTART:20270301T180000", "RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"),
            "more than one RRULE",
        ),
    ],
)
def test_bad_event(lines: tuple[str, ...], message: str) -> None:
    data = calendar(*vevent("DTSTAMP:20270101T000000Z", *lines))

    with pytest.raises(CalendarError, match=message):
        parse_calendar(data, CHICAGO)


def test_bad_default_time_zone() -> None:
    with pytest.raises(CalendarError, match="time zone"):
        parse_calendar(GOOGLE, "Eastern")


def test_calendar_error_is_a_value_error() -> None:
    assert issubclass(CalendarError, ValueError)
