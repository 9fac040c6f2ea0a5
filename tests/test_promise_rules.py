"""What a patient is promised when their care team is told (bot.risk.promise), the next office opening it
names (bot.core.clock), the clinic settings it uses, and how its texts read; the tone of a message that
raises no risk (bot.risk.tone) and the reading level of the other new texts of issue 18 items 7 and 14."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.content import Catalog, load_catalog
from bot.core.clock import OfficeHours
from bot.core.config import ConfigError, load_settings
from bot.risk.promise import Kept, Promise, by_the_hour
from bot.risk.tone import Tone, phrases, tone_of
from tests.harness import TEST_CLINIC_VALUES as CLINIC
from tests.readability import fernandez_huerta, flesch_kincaid_grade

NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = OfficeHours.parse("Mon-Fri 08:00-18:00")


def _at(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        ("2026-12-07 06:30", "2026-12-07 08:00"),  # Monday before opening: today
        ("2026-12-07 18:00", "2026-12-08 08:00"),  # Monday at closing: tomorrow
        ("2026-12-11 19:00", "2026-12-14 08:00"),  # Friday evening: Monday
        ("2026-12-12 12:00", "2026-12-14 08:00"),  # Saturday noon: Monday
    ],
)
def test_the_next_opening(now: str, opens: str) -> None:
    assert WEEKDAYS.next_opening(_at(now), NEW_YORK) == _at(opens)


def test_the_next_opening_of_overnight_hours_and_across_a_clock_change() -> None:
    nights = OfficeHours.parse("Fri-Sat 20:00-02:00")
    assert nights.next_opening(_at("2026-12-12 01:00"), NEW_YORK) == _at("2026-12-12 20:00")
    # 2027-03-14 is the spring-forward Sunday: Monday's 08:00 is still 08:00 local time (12:00 UTC).
    opening = WEEKDAYS.next_opening(_at("2027-03-13 09:00"), NEW_YORK)
    assert opening.astimezone(UTC) == datetime(2027, 3, 15, 12, 0, tzinfo=UTC)


CHRISTMAS = frozenset({date(2026, 12, 25)})  # a Friday
WINTER_BREAK = frozenset(date(2026, 12, 24) + timedelta(days=n) for n in range(9))  # Dec 24 to Jan 1


@pytest.mark.parametrize(
    ("closed", "now", "opens"),
    [
        (CHRISTMAS, "2026-12-24 22:00", "2026-12-28 08:00"),  # Thursday night: not "tomorrow", Monday
        (CHRISTMAS, "2026-12-25 10:00", "2026-12-28 08:00"),  # Christmas morning: Monday
        (WINTER_BREAK, "2026-12-23 19:00", "2027-01-04 08:00"),  # more than a week closed
    ],
)
def test_the_next_opening_skips_the_days_the_office_is_closed(
    closed: frozenset[date], now: str, opens: str
) -> None:
    assert replace(WEEKDAYS, closed=closed).next_opening(_at(now), NEW_YORK) == _at(opens)


def test_on_a_closed_day_the_promise_is_the_next_opening_not_today() -> None:
    settings = load_settings(
        _env_file=None, DEFAULT_TIMEZONE="America/New_York", OFFICE_CLOSED_DAYS="2026-12-25,2027-01-01"
    )
    christmas_morning = _at("2026-12-25 10:00")
    assert by_the_hour(settings, christmas_morning) == Kept(Promise.LATER, _at("2026-12-28 08:00"))
    assert by_the_hour(settings, _at("2026-12-24 10:00")) == Kept(Promise.TODAY)


def test_closed_days_that_are_not_dates_stop_start_up_with_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r"^OFFICE_CLOSED_DAYS: 'Dec 25' is not a date: .*YYYY-MM-DD"):
        load_settings(_env_file=None, OFFICE_CLOSED_DAYS="2026-12-24, Dec 25")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(Path(__file__).resolve().parent.parent / "content")


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("promise", [*Promise, "delayed"])
def test_each_promise_reads_at_about_a_6th_grade_level_and_names_a_number(
    catalog: Catalog, language: str, promise: str
) -> None:
    when = catalog.render("promise.when.weekday", language, weekday="X", time="8:00")
    text = catalog.render_with(CLINIC, f"promise.{promise}", language, when=when)
    if language == "en":
        assert flesch_kincaid_grade(text) <= 6.0
    else:
        assert fernandez_huerta(text) >= 70.0
    assert CLINIC["clinic_phone"] in text or CLINIC["after_hours_phone"] in text
    if promise is Promise.LATER:
        assert when in text and CLINIC["after_hours_phone"] in text


def test_the_program_name_comes_from_the_settings(catalog: Catalog) -> None:
    for language in ("en", "es"):
        assert catalog.render_with(CLINIC, "program.name", language) == CLINIC["program_name"]
        assert CLINIC["clinic_phone"] in catalog.render_with(CLINIC, "discharged.note", language)


@pytest.mark.parametrize("phone", ["555-0100", "+1 (555) 010-0199", "911", "+44 20 7946 0958"])
def test_phone_numbers_that_are_accepted(phone: str) -> None:
    assert load_settings(_env_file=None, CLINIC_PHONE=phone).clinic_phone == phone


@pytest.mark.parametrize("phone", ["call us", "12", "555-0100 ext", "+1 555 010 0199 0000 0000"])
def test_phone_numbers_that_are_refused(phone: str) -> None:
    with pytest.raises(ConfigError, match=r"^AFTER_HOURS_PHONE: must be a phone number"):
        load_settings(_env_file=None, AFTER_HOURS_PHONE=phone)


def test_a_blank_clinic_setting_counts_as_unset() -> None:
    settings = load_settings(_env_file=None, PROGRAM_NAME="  ", CLINIC_PHONE="555-0100")
    with pytest.raises(ConfigError, match=r"^PROGRAM_NAME: not set"):
        settings.require_clinic()


@pytest.mark.parametrize(
    "key",
    ["tone.greeting", "tone.feeling", "tone.talk_told", "escalation.patient_told", "input.not_understood"],
)
def test_the_other_new_patient_texts_read_at_about_a_6th_grade_level(catalog: Catalog, key: str) -> None:
    for language in ("en", "es"):
        promise = catalog.render_with(CLINIC, "promise.today", language)
        text = catalog.render_with(CLINIC, key, language, promise=promise, counselor="Dana")
        if language == "en":
            assert flesch_kincaid_grade(text) <= 6.0
        else:
            assert fernandez_huerta(text) >= 70.0


@pytest.mark.parametrize(
    ("text", "language", "tone"),
    [
        ("hello!", "en", Tone.GREETING),
        ("Good morning, how are you", "en", Tone.GREETING),
        ("HOLA", "es", Tone.GREETING),
        ("buenos días", "es", Tone.GREETING),
        ("I’m so sad today", "en", Tone.FEELING),
        ("hi, I feel so alone", "en", Tone.FEELING),  # a feeling wins over a greeting
        ("Had a rough day at work", "en", Tone.FEELING),
        ("hoy me siento mal", "es", Tone.FEELING),
        ("estoy muy ANSIOSA", "es", Tone.FEELING),
        ("hello I wanted to ask about the group on thursday night", "en", Tone.OTHER),  # more than a greeting
        ("the bus broke down", "en", Tone.OTHER),  # "down" alone is not a feeling
        ("solo quiero saber la hora", "es", Tone.OTHER),  # "solo" is "only" here
        ("this is madness", "en", Tone.OTHER),  # whole words only
    ],
)
def test_the_tone_of_a_message(catalog: Catalog, text: str, language: str, tone: Tone) -> None:
    greetings = phrases(catalog.render("tone.greetings", language))
    feelings = phrases(catalog.render("tone.feelings", language))
    assert tone_of(text, greetings, feelings) is tone
